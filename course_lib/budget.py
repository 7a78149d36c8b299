"""The token budget: how many positions of a context window each image, clip and prompt uses.

This module is the course's one entry point for counting (every public name of the budget
modules is importable from here):

- :mod:`course_lib.budget_counts`: first-principles counts (STFT frames, convolution
  lengths, ViT patch grids) and :class:`TokenCount` (``context`` and ``memory``);
- :mod:`course_lib.budget_processors`: real open models' resize, tiling and truncation rules
  (Qwen2-VL, LLaVA-1.5, LLaVA-NeXT, Idefics3, Qwen2-Audio, Whisper, Flamingo), tested
  against their ``transformers`` processors;
- :mod:`course_lib.budget_api`: hosted APIs' documented billing rules (gpt-4o, Claude,
  Gemini);
- :mod:`course_lib.budget_presets`: :data:`PRESETS`, each model's recipe with its source;
- :mod:`course_lib.budget_costs`: attention and MLP FLOPs and KV-cache memory.

Here: :class:`TokenBudget` adds items up, and :func:`calculate_budget` is the pure function
behind the chapter's calculator widget. The reference design ("micro-omni") turns an image
into 1 token (its CLS vector) and audio into 12.5 tokens per second inside a 512-token
context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from course_lib.budget_api import (  # noqa: F401  (re-exported)
    RULES_READ_ON,
    claude_image_tokens,
    gemini_audio_tokens,
    gemini_image_tokens,
    gpt4o_image_tokens,
)
from course_lib.budget_costs import (  # noqa: F401
    COST_KEYS,
    AttentionCost,
    attention_cost,
    image_scaling_costs,
    mlp_cost,
)
from course_lib.budget_counts import (  # noqa: F401
    FRAMINGS,
    IMAGE_MODES,
    QWEN2_AUDIO_LAYERS,
    STRIDE2_CONV,
    WHISPER_CONVS,
    AudioFrontEnd,
    ConvLayer,
    ImageFrontEnd,
    TokenCount,
    _check_int,
    _check_size,
    audio_tokens,
    conv_output_length,
    downsampled_length,
    image_tokens,
    seconds_to_samples,
    stft_num_frames,
)
from course_lib.budget_presets import KINDS, PRESETS, Preset, get_preset  # noqa: F401
from course_lib.budget_processors import (  # noqa: F401
    Idefics3Images,
    LlavaNextImages,
    Qwen2AudioClips,
    Qwen2VLImages,
    WhisperWindows,
    best_fit_resolution,
    smart_resize,
    whisper_feature_frames,
)

MODALITIES = ("image", "audio", "text", "other")

@dataclass(frozen=True)
class BudgetItem:
    """One thing placed in the context: a name, its modality and the tokens it uses."""

    name: str
    modality: str
    tokens: int


class ContextUsage:
    """What is left of a context window, for anything with ``context_length`` and ``used``."""

    context_length: int

    @property
    def used(self) -> int:
        raise NotImplementedError

    @property
    def remaining(self) -> int:
        """Positions left for generation (0 once the context is full)."""
        return max(self.context_length - self.used, 0)

    @property
    def over_budget(self) -> int:
        """How many tokens do not fit (0 when everything fits)."""
        return max(self.used - self.context_length, 0)

    @property
    def fits(self) -> bool:
        return self.used <= self.context_length


@dataclass
class TokenBudget(ContextUsage):
    """A context window being filled: ``add`` items, read ``used``, ``remaining``, ``over_budget``.

    Example:
        >>> TokenBudget(512).add("x-ray", "image", 1).add("prompt", "text", 4).remaining
        507
    """

    context_length: int = 512
    items: list[BudgetItem] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_int("context_length", self.context_length, 1)

    def add(self, name: str, modality: str, tokens: int) -> TokenBudget:
        """Add an item (returns the budget, so calls chain)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        _check_int("tokens", tokens, 0)
        self.items.append(BudgetItem(str(name), modality, tokens))
        return self

    @property
    def used(self) -> int:
        return sum(item.tokens for item in self.items)

    def tokens_by_modality(self) -> dict[str, int]:
        totals = dict.fromkeys(MODALITIES, 0)
        for item in self.items:
            totals[item.modality] += item.tokens
        return totals

    def table(self) -> str:
        """A plain-text table of the items and the totals."""
        lines = [f"{item.modality:<6} {item.name:<24} {item.tokens:>6}" for item in self.items]
        lines.append(f"used {self.used} of {self.context_length}: {self.remaining} left"
                     + (f", OVER BUDGET by {self.over_budget}" if self.over_budget else ""))
        return "\n".join(lines)




# ----------------------------------------------------------------------------- calculator
DOWNSAMPLING_STACKS: dict[str, tuple[ConvLayer, ...]] = {
    "3 stride-2 convs (8x, micro-omni)": (STRIDE2_CONV,) * 3,
    "2 stride-2 convs (4x)": (STRIDE2_CONV,) * 2,
    "1 stride-2 conv (2x)": (STRIDE2_CONV,),
    "none (1x)": (),
    "Whisper: conv + stride-2 conv (2x)": WHISPER_CONVS,
    "Qwen2-Audio: Whisper convs + pool (4x)": QWEN2_AUDIO_LAYERS,
}
DEFAULT_CONTEXT = 512


@dataclass(frozen=True)
class BudgetReport(ContextUsage):
    """What the calculator shows: tokens in the context, memory beside it, and a message.

    ``segments`` are positions in the context window (images, audio, prompt);
    ``memory_segments`` are encoder positions read through cross-attention, which use no
    context positions. ``error`` is set (and the totals are 0) when the settings are
    impossible, e.g. a patch size that does not divide the resolution: the widget shows it
    instead of raising.
    """

    context_length: int
    segments: tuple[tuple[str, int], ...] = ()
    details: tuple[str, ...] = ()
    error: str | None = None
    memory_segments: tuple[tuple[str, int], ...] = ()

    @property
    def used(self) -> int:
        return sum(tokens for _, tokens in self.segments)

    @property
    def memory(self) -> int:
        """Cross-attended positions (not counted against the context)."""
        return sum(tokens for _, tokens in self.memory_segments)

    @property
    def message(self) -> str:
        if self.error is not None:
            return f"Invalid settings: {self.error}"
        memory = (f" Plus {self.memory} memory positions read through cross-attention."
                  if self.memory else "")
        if self.over_budget:
            return (f"Over budget: {self.used} tokens do not fit in a context of "
                    f"{self.context_length}; remove {self.over_budget} tokens.{memory}")
        return f"Fits: {self.used} of {self.context_length} used, {self.remaining} left.{memory}"


def _custom_counts(num_images: int, image_mode: str, height: int, width: int, patch_size: int,
                   num_latents: int, image_extra_tokens: int, audio_seconds: float,
                   front_end: AudioFrontEnd, window_seconds: float | None,
                   pad_to_window: bool) -> tuple[TokenCount, TokenCount, list[str]]:
    _check_int("image_extra_tokens", image_extra_tokens, 0)
    per_image = image_tokens(height, width, patch_size, image_mode, num_latents)
    per_image += image_extra_tokens
    audio = front_end.tokens(audio_seconds)
    details = [f"images: {num_images} x {per_image} tokens ({image_mode}, "
               f"{height} x {width} px, patch {patch_size})"]
    if audio:
        seconds = audio_seconds if window_seconds is None else (
            window_seconds if pad_to_window else min(audio_seconds, window_seconds))
        frames = front_end.frames(seconds_to_samples(seconds, front_end.sample_rate))
        per_window = "" if window_seconds is None else f" per {seconds:g} s window"
        details.append(f"audio: {audio_seconds:g} s -> {frames} STFT frames{per_window}"
                       f" -> {audio} tokens")
    else:
        details.append("audio: none")
    return TokenCount(context=per_image), TokenCount(context=audio), details


def _preset_counts(chosen: Preset, num_images: int, height: int, width: int,
                   audio_seconds: float) -> tuple[TokenCount, TokenCount, list[str]]:
    per_image = chosen.image_tokens(height, width) if num_images else TokenCount()
    audio = chosen.audio_tokens(audio_seconds)
    if num_images:
        memory = f" + {per_image.memory} memory" if per_image.memory else ""
        details = [f"images: {num_images} x {per_image.context} tokens{memory} "
                   f"({height} x {width} px: {chosen.image.describe(height, width)})"]
    else:
        details = ["images: none"]
    if audio_seconds:
        details.append(f"audio: {audio.context} tokens"
                       + (f" + {audio.memory} memory" if audio.memory else "")
                       + f" ({chosen.audio.describe(audio_seconds)})")
    else:
        details.append("audio: none")
    return per_image, audio, details


def calculate_budget(context_length: int | None = None, num_images: int | None = None,
                     image_mode: str = "cls", image_size: int = 224, patch_size: int = 16,
                     num_latents: int = 64, image_extra_tokens: int = 0,
                     audio_seconds: float = 0.0, hop_length: int = 160, n_fft: int = 400,
                     framing: str = "centre",
                     downsampling: str = "3 stride-2 convs (8x, micro-omni)",
                     window_seconds: float | None = None, pad_to_window: bool = False,
                     prompt_tokens: int = 0, preset: str | None = None,
                     image_height: int | None = None,
                     image_width: int | None = None) -> BudgetReport:
    """The calculator widget's logic: settings -> a :class:`BudgetReport` (never raises).

    With ``preset`` (a key of :data:`PRESETS`) the model's own rules count each image of
    ``image_height x image_width`` pixels and the clip of ``audio_seconds`` (context and
    cross-attended memory apart); ``context_length`` defaults to the preset's (else 512).
    Without it (custom) images go through a bare ViT (``image_tokens(...)`` +
    ``image_extra_tokens``, every count in the context) and audio through an
    :class:`AudioFrontEnd` built from ``hop_length``, ``n_fft``, ``framing``,
    ``downsampling`` (a key of :data:`DOWNSAMPLING_STACKS`) and the optional fixed window.
    ``image_height`` and ``image_width`` default to ``image_size`` (square). The prompt's
    ``prompt_tokens`` always go to the context (Whisper: its decoder's). ``num_images``
    defaults to 1, or 0 for a preset that takes no images.
    """
    try:
        chosen = None if preset is None else get_preset(preset)
        if context_length is None:
            context_length = (chosen.context_length if chosen and chosen.context_length
                              else DEFAULT_CONTEXT)
        _check_int("context_length", context_length, 1)
        if num_images is None:
            num_images = 0 if chosen is not None and chosen.image is None else 1
        _check_int("num_images", num_images, 0)
        _check_int("prompt_tokens", prompt_tokens, 0)
        height = image_size if image_height is None else image_height
        width = image_size if image_width is None else image_width
        _check_size(height, width)
        if chosen is not None:
            per_image, audio, details = _preset_counts(chosen, num_images, height, width,
                                                       audio_seconds)
        else:
            if not isinstance(downsampling, str) or downsampling not in DOWNSAMPLING_STACKS:
                raise ValueError(f"downsampling must be one of {tuple(DOWNSAMPLING_STACKS)}, "
                                 f"got {downsampling!r}")
            front_end = AudioFrontEnd(n_fft=n_fft, hop_length=hop_length, framing=framing,
                                      downsampling=DOWNSAMPLING_STACKS[downsampling],
                                      window_seconds=window_seconds,
                                      pad_to_window=pad_to_window)
            per_image, audio, details = _custom_counts(
                num_images, image_mode, height, width, patch_size, num_latents,
                image_extra_tokens, audio_seconds, front_end, window_seconds, pad_to_window)
        details.append(f"prompt: {prompt_tokens} tokens")
    except (ValueError, TypeError, OverflowError, KeyError) as error:
        # Documented as never raising: every bad setting becomes the report's message.
        shown = context_length if isinstance(context_length, int) \
            and not isinstance(context_length, bool) and context_length > 0 else 0
        return BudgetReport(shown, error=str(error))
    images = per_image.times(num_images)
    segments = (("images", images.context), ("audio", audio.context), ("prompt", prompt_tokens))
    memory = tuple((name, count.memory) for name, count in
                   (("image memory", images), ("audio memory", audio)) if count.memory)
    return BudgetReport(context_length, segments, tuple(details), memory_segments=memory)
