"""The token budget: how many positions of a context window each image, clip and prompt uses.

Everything here is counted, not estimated: the audio formulas are the frame count of
``torch.stft`` followed by the output length of ``nn.Conv1d``, the image formulas are the
patch grid of a ViT, and the tests check both against the real operations and against the
course's own encoders. The reference design ("micro-omni") turns an image into 1 token (its
CLS vector) and audio into 12.5 tokens per second (16 kHz, hop 160, three stride-2
convolutions) inside a 512-token context.

The numbers for real models live in :data:`PRESETS`, each with the paper or code it comes
from. :class:`TokenBudget` adds items up; :func:`attention_cost` and
:func:`image_scaling_costs` say what a longer sequence costs in FLOPs and KV-cache memory;
:func:`calculate_budget` is the pure function behind the chapter's calculator widget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

IMAGE_MODES = ("cls", "patches", "patches+cls", "resampler")
MODALITIES = ("image", "audio", "text", "other")
FRAMINGS = ("centre", "centre-drop-last", "no-padding")
ConvLayer = tuple[int, int, int]  # (kernel_size, stride, padding)
STRIDE2_CONV: ConvLayer = (3, 2, 1)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_seconds(seconds: object, name: str = "seconds") -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {seconds!r}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {seconds!r}")
    return float(seconds)


# ----------------------------------------------------------------------------- audio
def _check_stft_arguments(n_fft: int, hop_length: int) -> None:
    _check_int("hop_length", hop_length, 1)
    _check_int("n_fft", n_fft, 1)
    if n_fft < hop_length:
        raise ValueError(f"n_fft {n_fft} is smaller than hop_length {hop_length}: "
                         "frames would skip samples")


def stft_num_frames(num_samples: int, n_fft: int = 400, hop_length: int = 160,
                    center: bool = True) -> int:
    """The number of frames ``torch.stft`` returns for a signal of ``num_samples`` samples.

    Frames must fit inside the (padded) signal: ``1 + (padded_length - n_fft) // hop_length``.
    With ``center=True`` torch pads ``n_fft // 2`` samples on each side (reflect padding); for
    an even ``n_fft`` that makes ``1 + num_samples // hop_length`` frames, starting at samples
    0, hop, 2 hop, ... up to and including the last sample. Without padding:
    ``1 + (num_samples - n_fft) // hop_length``.

    Args:
        num_samples: length of the waveform.
        n_fft: window (FFT) length in samples, at least ``hop_length``.
        hop_length: samples between the starts of two frames, > 0.
        center: pad like ``torch.stft(center=True, pad_mode="reflect")``.

    Shape:
        waveform ``(num_samples,)`` -> spectrogram ``(n_fft // 2 + 1, frames)``.

    Raises:
        ValueError: naming the argument, for a bad size or a signal too short for the STFT
            (reflect padding needs more than ``n_fft // 2`` samples; no padding needs
            ``n_fft``).
    """
    _check_int("num_samples", num_samples, 0)
    _check_stft_arguments(n_fft, hop_length)
    if center:
        if num_samples <= n_fft // 2:
            raise ValueError(f"num_samples {num_samples} is too short for centre (reflect) "
                             f"padding of {n_fft // 2}: needs more than n_fft // 2 samples")
        return 1 + (num_samples + 2 * (n_fft // 2) - n_fft) // hop_length
    if num_samples < n_fft:
        raise ValueError(f"num_samples {num_samples} is shorter than n_fft {n_fft} "
                         "(center=False needs at least one full window)")
    return 1 + (num_samples - n_fft) // hop_length


def conv_output_length(length: int, kernel_size: int = 3, stride: int = 2,
                       padding: int = 1) -> int:
    """Output length of ``nn.Conv1d`` (or a pooling layer): floor((L + 2p - k) / s) + 1.

    For kernel 3, stride 2, padding 1 this is ceil(L / 2): an odd length rounds up.

    Shape:
        input ``(B, C, length)`` -> output ``(B, C_out, result)``.

    Raises:
        ValueError: naming the argument, for non-positive sizes or a kernel longer than the
            padded input.
    """
    _check_int("length", length, 1)
    _check_int("kernel_size", kernel_size, 1)
    _check_int("stride", stride, 1)
    _check_int("padding", padding, 0)
    if length + 2 * padding < kernel_size:
        raise ValueError(f"kernel_size {kernel_size} is longer than the padded input "
                         f"(length {length} + 2 * padding {padding})")
    return (length + 2 * padding - kernel_size) // stride + 1


def downsampled_length(length: int, layers: Sequence[ConvLayer]) -> int:
    """Length after a stack of convolution/pooling layers, each ``(kernel, stride, padding)``."""
    for kernel_size, stride, padding in layers:
        length = conv_output_length(length, kernel_size, stride, padding)
    return length


def seconds_to_samples(seconds: float, sample_rate: int = 16000) -> int:
    """``seconds * sample_rate`` rounded to the nearest sample (3 s at 16 kHz -> 48000)."""
    seconds = _check_seconds(seconds)
    _check_int("sample_rate", sample_rate, 1)
    return round(seconds * sample_rate)


def audio_tokens(seconds: float, sample_rate: int = 16000, n_fft: int = 400,
                 hop_length: int = 160, center: bool = True,
                 num_downsample_convs: int = 3) -> int:
    """Tokens an audio clip becomes: samples -> STFT frames -> stride-2 convolutions.

    Each convolution has kernel 3, stride 2, padding 1 (L -> ceil(L / 2)). With the defaults
    (the micro-omni design) that is 12.5 tokens per second nominal: 3 s -> 301 frames -> 38.
    A clip of 0 s costs 0 tokens.

    Raises:
        ValueError: naming the argument: negative or NaN ``seconds``, ``hop_length`` <= 0,
            ``n_fft`` < ``hop_length``, a clip too short for the STFT, and so on.
    """
    num_samples = seconds_to_samples(seconds, sample_rate)
    _check_int("num_downsample_convs", num_downsample_convs, 0)
    _check_stft_arguments(n_fft, hop_length)
    if num_samples == 0:
        return 0
    frames = stft_num_frames(num_samples, n_fft, hop_length, center)
    return downsampled_length(frames, [STRIDE2_CONV] * num_downsample_convs)


@dataclass(frozen=True)
class AudioFrontEnd:
    """How a model turns a waveform into tokens (framing, downsampling, fixed windows).

    Args:
        framing: ``"centre"`` (torch.stft, center=True), ``"centre-drop-last"`` (Whisper:
            centre-padded, then the last frame is dropped, so frames = samples // hop) or
            ``"no-padding"`` (center=False).
        downsampling: the encoder's ``(kernel, stride, padding)`` layers along time.
        window_seconds: if set, longer clips are cut into windows of this length and each
            window is encoded separately; with ``pad_to_window`` every window (including a
            short clip) is padded to the full length first, as Whisper does.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    framing: str = "centre"
    downsampling: tuple[ConvLayer, ...] = (STRIDE2_CONV,) * 3
    window_seconds: float | None = None
    pad_to_window: bool = False
    n_mels: int = 128

    def frames(self, num_samples: int) -> int:
        """STFT frames for ``num_samples`` samples under this framing."""
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, got {self.framing!r}")
        if self.framing == "no-padding":
            return stft_num_frames(num_samples, self.n_fft, self.hop_length, center=False)
        frames = stft_num_frames(num_samples, self.n_fft, self.hop_length, center=True)
        return frames - 1 if self.framing == "centre-drop-last" else frames

    def _window_tokens(self, num_samples: int) -> int:
        return downsampled_length(self.frames(num_samples), self.downsampling)

    def tokens(self, seconds: float) -> int:
        """Tokens for a clip of ``seconds`` (0 s -> 0 tokens)."""
        num_samples = seconds_to_samples(seconds, self.sample_rate)
        _check_stft_arguments(self.n_fft, self.hop_length)
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, got {self.framing!r}")
        if num_samples == 0:
            return 0
        if self.window_seconds is None:
            return self._window_tokens(num_samples)
        window = seconds_to_samples(self.window_seconds, self.sample_rate)
        if window == 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds!r}")
        full, rest = divmod(num_samples, window)
        total = full * self._window_tokens(window)
        if rest:
            total += self._window_tokens(window if self.pad_to_window else rest)
        return total

    def tokens_per_second(self) -> float:
        """Nominal rate: sample_rate / hop / (product of the strides)."""
        return self.sample_rate / self.hop_length / math.prod(s for _, s, _ in self.downsampling)


# ----------------------------------------------------------------------------- images
def image_tokens(height: int = 224, width: int = 224, patch_size: int = 16,
                 mode: str = "cls", num_latents: int = 64) -> int:
    """Tokens an image becomes after a ViT with ``patch_size`` patches.

    Modes: ``"cls"`` keeps only the CLS vector (1 token, whatever the resolution);
    ``"patches"`` keeps every patch token, (H / p)(W / p); ``"patches+cls"`` both; and
    ``"resampler"`` compresses any grid to ``num_latents`` learned queries (Flamingo: 64).

    Shape:
        image ``(C, height, width)`` -> tokens ``(result, D)``.

    Raises:
        ValueError: naming the argument, e.g. "height 225 is not divisible by patch_size 16",
            or an unknown ``mode``.
    """
    if mode not in IMAGE_MODES:
        raise ValueError(f"mode must be one of {IMAGE_MODES}, got {mode!r}")
    _check_int("height", height, 1)
    _check_int("width", width, 1)
    _check_int("patch_size", patch_size, 1)
    _check_int("num_latents", num_latents, 1)
    for name, size in (("height", height), ("width", width)):
        if size % patch_size:
            raise ValueError(f"{name} {size} is not divisible by patch_size {patch_size}")
    num_patches = (height // patch_size) * (width // patch_size)
    return {"cls": 1, "patches": num_patches, "patches+cls": num_patches + 1,
            "resampler": num_latents}[mode]


@dataclass(frozen=True)
class ImageFrontEnd:
    """How a model turns one image into tokens.

    Args:
        merge_size: neighbouring ``merge_size x merge_size`` patch tokens merged into one
            (Qwen2-VL: 2), so the image must divide into ``patch_size * merge_size`` blocks.
        extra_tokens: special tokens wrapped around each image (Qwen2-VL: vision start/end).
    """

    height: int = 224
    width: int = 224
    patch_size: int = 16
    mode: str = "cls"
    num_latents: int = 64
    merge_size: int = 1
    extra_tokens: int = 0

    def tokens(self, height: int | None = None, width: int | None = None) -> int:
        """Tokens for one image (at the native size unless ``height``/``width`` are given)."""
        _check_int("merge_size", self.merge_size, 1)
        _check_int("extra_tokens", self.extra_tokens, 0)
        block = self.patch_size * self.merge_size
        merged = image_tokens(self.height if height is None else height,
                              self.width if width is None else width,
                              block, self.mode, self.num_latents)
        return merged + self.extra_tokens


# ----------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """A real model's (or the course design's) token recipe, with where the numbers come from.

    ``context_length`` is None where the source gives no single figure the course relies on.
    """

    name: str
    source: str
    summary: str
    image: ImageFrontEnd | None = None
    audio: AudioFrontEnd | None = None
    context_length: int | None = None


WHISPER_CONVS: tuple[ConvLayer, ...] = ((3, 1, 1), (3, 2, 1))
QWEN2_AUDIO_LAYERS: tuple[ConvLayer, ...] = WHISPER_CONVS + ((2, 2, 0),)  # + stride-2 pool

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("micro-omni",
               "Course reference design (SYLLABUS B and G): ViT 224/16, CLS token only; 16 kHz "
               "log-mel with 128 bins, window 400, hop 160; three stride-2 convs; context 512",
               "1 token per image, 12.5 audio tokens per second",
               image=ImageFrontEnd(224, 224, 16, "cls"), audio=AudioFrontEnd(),
               context_length=512),
        Preset("llava-1.5",
               "Liu et al. 2023, 'Improved Baselines with Visual Instruction Tuning' (LLaVA-1.5): "
               "CLIP ViT-L/14 at 336 px, patch tokens without CLS (24 x 24); training length "
               "2048 (model_max_length in its scripts)",
               "576 tokens per image",
               image=ImageFrontEnd(336, 336, 14, "patches"), context_length=2048),
        Preset("whisper",
               "Radford et al. 2022, 'Robust Speech Recognition via Large-Scale Weak Supervision' "
               "(Whisper): 80 mel, 25 ms window, 10 ms hop, every clip padded to 30 s = 3000 "
               "frames (last STFT frame dropped); conv then stride-2 conv -> 1500 positions",
               "50 tokens per second, 1500 per 30 s window",
               audio=AudioFrontEnd(framing="centre-drop-last", downsampling=WHISPER_CONVS,
                                   window_seconds=30.0, pad_to_window=True, n_mels=80),
               context_length=1500),
        Preset("qwen2-audio",
               "Chu et al. 2024, 'Qwen2-Audio Technical Report' (arXiv:2407.10759): Whisper-"
               "large-v3 encoder (128 mel, hop 10 ms) + a stride-2 pooling layer, one token per "
               "40 ms; lengths as in Hugging Face's Qwen2AudioEncoder",
               "25 tokens per second",
               audio=AudioFrontEnd(framing="centre-drop-last", downsampling=QWEN2_AUDIO_LAYERS)),
        Preset("flamingo",
               "Alayrac et al. 2022, 'Flamingo: a Visual Language Model for Few-Shot Learning': "
               "the Perceiver Resampler maps any number of visual features to 64 tokens, which "
               "the LM reads through gated cross-attention",
               "64 resampled tokens per image, whatever its resolution",
               image=ImageFrontEnd(224, 224, 16, "resampler", num_latents=64)),
        Preset("qwen2-vl",
               "Wang et al. 2024, 'Qwen2-VL: Enhancing Vision-Language Model's Perception of the "
               "World at Any Resolution': ViT patch 14, 2 x 2 neighbours merged (one token per "
               "28 x 28 pixels) plus vision start/end tokens: 224 x 224 -> 66",
               "one token per 28 x 28 pixels (+2 delimiters)",
               image=ImageFrontEnd(224, 224, 14, "patches", merge_size=2, extra_tokens=2)),
    )
}


def get_preset(preset: str) -> Preset:
    """The :data:`PRESETS` entry called ``preset``; ValueError naming the argument if unknown."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    return PRESETS[preset]


# ----------------------------------------------------------------------------- the budget
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


# ----------------------------------------------------------------------------- cost
@dataclass(frozen=True)
class AttentionCost:
    """FLOPs of the attention sublayers of ``depth`` layers and the K/V cache they keep."""

    score_flops: int  # Q K^T and weights @ V: quadratic in the sequence length
    projection_flops: int  # the Q, K, V and output projections: linear in it
    kv_cache_bytes: int

    @property
    def total_flops(self) -> int:
        return self.score_flops + self.projection_flops


def attention_cost(sequence_length: int, width: int, depth: int, key_length: int | None = None,
                   bytes_per_value: int = 2) -> AttentionCost:
    """Cost of full (dense) attention over a sequence, counted as 2 FLOPs per multiply-add.

    Per layer: the Q and output projections cost 2 N D^2 each, K and V 2 M D^2 each; Q K^T
    and weights @ V cost 2 N M D each. The cache holds K and V: 2 M D values per layer.
    ``key_length`` M defaults to N (self-attention); set it for cross-attention. A causal
    kernel can skip about half of the score FLOPs; this counts the dense product.

    Shape:
        queries ``(N, D)``, keys/values ``(M, D)`` in each of ``depth`` layers.
    """
    _check_int("sequence_length", sequence_length, 0)
    _check_int("width", width, 1)
    _check_int("depth", depth, 0)
    _check_int("bytes_per_value", bytes_per_value, 1)
    queries = sequence_length
    keys = sequence_length if key_length is None else _check_int("key_length", key_length, 0)
    return AttentionCost(
        score_flops=depth * 4 * queries * keys * width,
        projection_flops=depth * 2 * width * width * (2 * queries + 2 * keys),
        kv_cache_bytes=depth * 2 * keys * width * bytes_per_value,
    )


def image_scaling_costs(num_images: Sequence[int], text_tokens: int = 50,
                        tokens_per_image: int = 576, num_latents: int = 64, width: int = 4096,
                        depth: int = 32, cross_attention_every: int = 4,
                        resampler_depth: int = 6, bytes_per_value: int = 2) -> dict[str, list]:
    """Attention FLOPs and KV memory as images are added, LLaVA-style vs Flamingo-style.

    LLaVA-style: every image's ``tokens_per_image`` tokens join the LM's sequence, so each of
    the ``depth`` layers attends over ``text_tokens + n * tokens_per_image`` positions.
    Flamingo-style: the LM's sequence holds the text plus one ``<image>`` marker per image;
    a resampler (``resampler_depth`` layers, ``num_latents`` queries over the image tokens
    and the latents) compresses each image, and every ``cross_attention_every``-th layer adds a
    cross-attention from the LM's sequence to all ``n * num_latents`` latents.

    Returns:
        lists, one entry per element of ``num_images``: ``llava_sequence``, ``llava_flops``,
        ``llava_kv_bytes``, ``flamingo_sequence``, ``flamingo_flops``, ``flamingo_kv_bytes``.
    """
    _check_int("cross_attention_every", cross_attention_every, 1)
    for name, value in (("text_tokens", text_tokens), ("tokens_per_image", tokens_per_image),
                        ("num_latents", num_latents), ("resampler_depth", resampler_depth)):
        _check_int(name, value, 0)
    result: dict[str, list] = {key: [] for key in (
        "num_images", "llava_sequence", "llava_flops", "llava_kv_bytes",
        "flamingo_sequence", "flamingo_flops", "flamingo_kv_bytes")}
    cross_layers = depth // cross_attention_every
    for count in num_images:
        _check_int("num_images", count, 0)
        llava_length = text_tokens + count * tokens_per_image
        llava = attention_cost(llava_length, width, depth, bytes_per_value=bytes_per_value)
        lm_length = text_tokens + count
        lm = attention_cost(lm_length, width, depth, bytes_per_value=bytes_per_value)
        cross = attention_cost(lm_length, width, cross_layers if count else 0,
                               key_length=count * num_latents, bytes_per_value=bytes_per_value)
        resampler = attention_cost(num_latents, width, resampler_depth,
                                   key_length=tokens_per_image + num_latents)
        result["num_images"].append(count)
        result["llava_sequence"].append(llava_length)
        result["llava_flops"].append(llava.total_flops)
        result["llava_kv_bytes"].append(llava.kv_cache_bytes)
        result["flamingo_sequence"].append(lm_length)
        result["flamingo_flops"].append(lm.total_flops + cross.total_flops
                                        + count * resampler.total_flops)
        result["flamingo_kv_bytes"].append(lm.kv_cache_bytes + cross.kv_cache_bytes)
    return result


# ----------------------------------------------------------------------------- calculator
DOWNSAMPLING_STACKS: dict[str, tuple[ConvLayer, ...]] = {
    "3 stride-2 convs (8x, micro-omni)": (STRIDE2_CONV,) * 3,
    "2 stride-2 convs (4x)": (STRIDE2_CONV,) * 2,
    "1 stride-2 conv (2x)": (STRIDE2_CONV,),
    "none (1x)": (),
    "Whisper: conv + stride-2 conv (2x)": WHISPER_CONVS,
    "Qwen2-Audio: Whisper convs + pool (4x)": QWEN2_AUDIO_LAYERS,
}


@dataclass(frozen=True)
class BudgetReport(ContextUsage):
    """What the calculator shows: per-modality tokens, totals, and a message for the learner.

    ``error`` is set (and the totals are 0) when the settings are impossible, e.g. a patch size
    that does not divide the resolution: the widget shows it instead of raising.
    """

    context_length: int
    segments: tuple[tuple[str, int], ...] = ()
    details: tuple[str, ...] = ()
    error: str | None = None

    @property
    def used(self) -> int:
        return sum(tokens for _, tokens in self.segments)

    @property
    def message(self) -> str:
        if self.error is not None:
            return f"Invalid settings: {self.error}"
        if self.over_budget:
            return (f"Over budget: {self.used} tokens do not fit in a context of "
                    f"{self.context_length}; remove {self.over_budget} tokens.")
        return f"Fits: {self.used} of {self.context_length} used, {self.remaining} left."


def calculate_budget(context_length: int = 512, num_images: int = 1, image_mode: str = "cls",
                     image_size: int = 224, patch_size: int = 16, num_latents: int = 64,
                     image_extra_tokens: int = 0, audio_seconds: float = 0.0,
                     hop_length: int = 160, n_fft: int = 400, framing: str = "centre",
                     downsampling: str = "3 stride-2 convs (8x, micro-omni)",
                     window_seconds: float | None = None, pad_to_window: bool = False,
                     prompt_tokens: int = 0) -> BudgetReport:
    """The calculator widget's logic: settings -> a :class:`BudgetReport` (never raises).

    Images are square (``image_size`` pixels a side); each costs
    ``image_tokens(...) + image_extra_tokens``. Audio goes through an :class:`AudioFrontEnd`
    built from ``hop_length``, ``n_fft``, ``framing``, ``downsampling`` (a key of
    :data:`DOWNSAMPLING_STACKS`) and the optional fixed window.
    """
    try:
        _check_int("context_length", context_length, 1)
        _check_int("num_images", num_images, 0)
        _check_int("image_extra_tokens", image_extra_tokens, 0)
        _check_int("prompt_tokens", prompt_tokens, 0)
        if downsampling not in DOWNSAMPLING_STACKS:
            raise ValueError(f"downsampling must be one of {tuple(DOWNSAMPLING_STACKS)}, "
                             f"got {downsampling!r}")
        per_image = image_tokens(image_size, image_size, patch_size, image_mode, num_latents)
        per_image += image_extra_tokens
        front_end = AudioFrontEnd(n_fft=n_fft, hop_length=hop_length, framing=framing,
                                  downsampling=DOWNSAMPLING_STACKS[downsampling],
                                  window_seconds=window_seconds, pad_to_window=pad_to_window)
        audio = front_end.tokens(audio_seconds)
        details = [f"images: {num_images} x {per_image} tokens ({image_mode}, "
                   f"{image_size} px, patch {patch_size})"]
        if audio:
            seconds = audio_seconds if window_seconds is None else (
                window_seconds if pad_to_window else min(audio_seconds, window_seconds))
            frames = front_end.frames(seconds_to_samples(seconds, front_end.sample_rate))
            per_window = "" if window_seconds is None else f" per {seconds:g} s window"
            details.append(f"audio: {audio_seconds:g} s -> {frames} STFT frames{per_window}"
                           f" -> {audio} tokens")
        else:
            details.append("audio: none")
        details.append(f"prompt: {prompt_tokens} tokens")
    except ValueError as error:
        return BudgetReport(context_length if isinstance(context_length, int) else 0,
                            error=str(error))
    segments = (("images", num_images * per_image), ("audio", audio), ("prompt", prompt_tokens))
    return BudgetReport(context_length, segments, tuple(details))
