"""Token recipes of real models, of hosted APIs and of the course's own design.

A :class:`Preset` answers two questions for any image size and clip length: how many positions
does this input take in the language model's sequence (``context``), and how many encoder
positions does the model read through cross-attention instead (``memory``)? Each preset's
rules live in :mod:`course_lib.budget_processors` (open models, checked against their
``transformers`` processors), :mod:`course_lib.budget_api` (documented API billing) or
:mod:`course_lib.budget_counts` (the course's own first-principles counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from course_lib._validation import ArgumentTypeError, check_choice, check_text, describe
from course_lib.budget_api import (
    CLAUDE_VISION_PAGE,
    GEMINI_TOKENS_PAGE,
    OPENAI_VISION_PAGE,
    RULES_READ_ON,
    ApiAudio,
    ApiImages,
)
from course_lib.budget_counts import (
    AudioFrontEnd,
    TokenCount,
    _check_int,
    _check_seconds,
    seconds_to_samples,
)
from course_lib.budget_processors import (
    FixedResize,
    Idefics3Images,
    LlavaNextImages,
    Qwen2AudioClips,
    Qwen2VLImages,
    ResamplerImages,
    WhisperWindows,
    _check_image,
)

KINDS = ("course", "open", "paper", "api")


class ImageRule(Protocol):
    def tokens(self, height: int, width: int) -> TokenCount: ...
    def describe(self, height: int, width: int) -> str: ...


class AudioRule(Protocol):
    def tokens(self, seconds: float) -> TokenCount: ...
    def describe(self, seconds: float) -> str: ...


@dataclass(frozen=True)
class FrontEndAudio:
    """A first-principles :class:`AudioFrontEnd` (STFT + convolutions) as an audio rule."""

    front_end: AudioFrontEnd

    def __post_init__(self) -> None:
        if not isinstance(self.front_end, AudioFrontEnd):
            raise ArgumentTypeError(f"front_end must be an AudioFrontEnd, got "
                                    f"{describe(self.front_end)}")

    def tokens(self, seconds: float) -> TokenCount:
        """The front end's tokens for a clip of ``seconds``, all in the context."""
        return TokenCount(context=self.front_end.tokens(seconds))

    def describe(self, seconds: float) -> str:
        """One line: seconds -> STFT frames -> tokens."""
        seconds = _check_seconds(seconds)
        samples = seconds_to_samples(seconds, self.front_end.sample_rate)
        frames = self.front_end.frames(samples) if samples else 0
        return f"{seconds:g} s -> {frames} STFT frames -> {self.front_end.tokens(seconds)} tokens"


@dataclass(frozen=True)
class Preset:
    """One model's token recipe, with where its numbers come from.

    Args:
        kind: ``"course"`` (the course's design), ``"open"`` (an open model whose
            ``transformers`` processor the tests run), ``"paper"`` (a published design with no
            processor to run) or ``"api"`` (a hosted API's documented billing rule).
        context_length: the language model's (or Whisper's decoder's) own sequence length
            where one figure is documented, else None.
        image, audio: the rules; None where the model takes no such input.
    """

    name: str
    kind: str
    source: str
    summary: str
    image: ImageRule | None = None
    audio: AudioRule | None = None
    context_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("name", "source", "summary"):
            check_text(name, getattr(self, name))
        check_choice("kind", self.kind, KINDS)
        for name, rule in (("image", self.image), ("audio", self.audio)):
            if rule is not None and not all(callable(getattr(rule, method, None))
                                            for method in ("tokens", "describe")):
                raise ArgumentTypeError(f"{name} must be a rule with tokens() and describe() "
                                        f"(or None), got {describe(rule)}")
        if self.context_length is not None:
            object.__setattr__(self, "context_length",
                               _check_int("context_length", self.context_length, 1))

    def image_tokens(self, height: int, width: int) -> TokenCount:
        """Tokens of one ``height x width`` image (pixels), after the model's own resizing.

        Raises:
            ValueError: a non-positive size, a size the model refuses, or a preset that takes
                no images.
        """
        _check_image(height, width)
        if self.image is None:
            raise ValueError(f"preset {self.name!r} takes no images (argument height/width)")
        return self.image.tokens(height, width)

    def audio_tokens(self, seconds: float) -> TokenCount:
        """Tokens of one clip of ``seconds`` (0 s: no clip, no tokens).

        Raises:
            ValueError: negative, NaN or infinite ``seconds``, or a preset without audio.
        """
        seconds = _check_seconds(seconds)
        if self.audio is None:
            if seconds == 0:
                return TokenCount()
            raise ValueError(f"preset {self.name!r} takes no audio (argument seconds)")
        return self.audio.tokens(seconds)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("micro-omni", "course",
               "Course reference design (SYLLABUS B and G): images resized to 224 x 224, ViT "
               "224/16, CLS token only; 16 kHz log-mel with 128 bins, window 400, hop 160; "
               "three stride-2 convs; context 512",
               "1 token per image, 12.5 audio tokens per second",
               image=FixedResize(224, 1, "resize to 224 x 224, keep the CLS token"),
               audio=FrontEndAudio(AudioFrontEnd()), context_length=512),
        Preset("llava-1.5", "open",
               "Liu et al. 2023, 'Improved Baselines with Visual Instruction Tuning', "
               "arXiv:2310.03744: CLIP ViT-L/14 at 336 px, 24 x 24 patch tokens (CLS dropped); "
               "every image resized and centre-cropped to 336 (llava-hf/llava-1.5-7b-hf "
               "CLIPImageProcessor; LlavaProcessor); training length 2048",
               "576 tokens per image, whatever its size",
               image=FixedResize(336, 576), context_length=2048),
        Preset("llava-next", "open",
               "Liu et al. 2024, 'LLaVA-NeXT: Improved reasoning, OCR, and world knowledge': "
               "AnyRes tiling on the best-fit grid of llava-hf/llava-v1.6-mistral-7b-hf's "
               "pinpoints, unpadded, one newline per row, + the 336-px base image "
               "(LlavaNextProcessor._get_number_of_features)",
               "up to 2928 tokens per image (576 base + tiles + newlines)",
               image=LlavaNextImages()),
        Preset("qwen2-vl", "open",
               "Wang et al. 2024, 'Qwen2-VL: Enhancing Vision-Language Model's Perception of the "
               "World at Any Resolution', arXiv:2409.12191: smart_resize to multiples of 28 with "
               "Qwen2-VL-7B-Instruct's min_pixels 3136 / max_pixels 12845056, 14-px patches "
               "merged 2 x 2, + <|vision_start|> / <|vision_end|> (Qwen2VLImageProcessor)",
               "one token per 28 x 28 pixels after resizing (+2 delimiters), 4 to 16384",
               image=Qwen2VLImages()),
        Preset("idefics3", "open",
               "Laurencon et al. 2024, 'Building and better understanding vision-language "
               "models: insights and future directions', arXiv:2408.12637 (Idefics3): longest "
               "side to 1456, 364-px tiles + a global image, 169 tokens each after pixel "
               "shuffle, row/column wrapper tokens (Idefics3ImageProcessor, Idefics3Processor; "
               "HuggingFaceM4/Idefics3-8B-Llama3)",
               "(tiles + 1) x 169 tokens + wrappers; even a tiny image is enlarged to 1456 px",
               image=Idefics3Images()),
        Preset("flamingo", "paper",
               "Alayrac et al. 2022, 'Flamingo: a Visual Language Model for Few-Shot Learning', "
               "arXiv:2204.14198: the Perceiver Resampler maps each image to 64 latents that "
               "the LM reads through gated cross-attention; its text holds one <image> marker",
               "1 marker in the context + 64 cross-attended latents per image",
               image=ResamplerImages()),
        Preset("whisper", "open",
               "Radford et al. 2022, 'Robust Speech Recognition via Large-Scale Weak "
               "Supervision', arXiv:2212.04356: each clip padded to 30 s = 3000 frames, conv + "
               "stride-2 conv -> 1500 encoder positions that the decoder cross-attends to; the "
               "decoder's own text context is 448 (max_target_positions)",
               "1500 memory positions per 30 s window; prompt in a 448-token decoder context",
               audio=WhisperWindows(), context_length=448),
        Preset("qwen2-audio", "open",
               "Chu et al. 2024, 'Qwen2-Audio Technical Report', arXiv:2407.10759: Whisper-"
               "large-v3 encoder + stride-2 pooling, one token per 40 ms; each clip cut at 30 s "
               "(750 tokens), frames rounded up, + <|audio_bos|> / <|audio_eos|> "
               "(Qwen2AudioProcessor)",
               "25 tokens per second up to 30 s (+2 delimiters)",
               audio=Qwen2AudioClips()),
        Preset("gpt-4o", "api",
               f"OpenAI vision guide, {OPENAI_VISION_PAGE}, read {RULES_READ_ON}: low detail "
               "85; high detail: fit in 2048 x 2048, shortest side to 768, 85 + 170 per 512-px "
               "tile; context 128,000",
               "85 + 170 per 512-px tile (high detail)",
               image=ApiImages("gpt-4o"), context_length=128_000),
        Preset("claude", "api",
               f"Anthropic vision guide, {CLAUDE_VISION_PAGE}, read {RULES_READ_ON}: about "
               "width x height / 750 tokens after scaling to a long edge of at most 1568 px "
               "and about 1600 tokens; context 200,000",
               "about width x height / 750, at most about 1600 per image",
               image=ApiImages("claude"), context_length=200_000),
        Preset("gemini", "api",
               f"Gemini API token guide, {GEMINI_TOKENS_PAGE}, read {RULES_READ_ON}: 258 "
               "tokens per image up to 384 x 384, larger images in 768-px tiles of 258 each; "
               "audio 32 tokens per second; context 1,048,576 (gemini-2.0-flash)",
               "258 per image or 768-px tile; 32 audio tokens per second",
               image=ApiImages("gemini"), audio=ApiAudio(), context_length=1_048_576),
    )
}


def get_preset(preset: str) -> Preset:
    """The :data:`PRESETS` entry called ``preset``; ValueError naming the argument if unknown."""
    check_text("preset", preset)
    return PRESETS[check_choice("preset", preset, tuple(PRESETS))]
