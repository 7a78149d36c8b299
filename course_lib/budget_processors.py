"""How real open models' processors turn one image or clip into tokens: resize, tile, truncate.

A model does not see the image you send: its processor first resizes, crops, pads or tiles
it, and then writes placeholder tokens for it into the text. Each class here is one model's
rule, written from that model's processor in Hugging Face ``transformers`` (5.23; the file
and function are named in each docstring), with the released checkpoint's configuration
values as defaults. ``tests/test_budget_processors.py`` runs those real processors, built
without weights from the same values, and compares the counts over grids of sizes and
durations. Every ``tokens`` method returns a :class:`~course_lib.budget_counts.TokenCount`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib._validation import ArgumentTypeError, check_number, check_text, describe
from course_lib.budget_counts import (
    TokenCount,
    _check_int,
    _check_seconds,
    _check_size,
    seconds_to_samples,
)

SAMPLE_RATE = 16000
WHISPER_WINDOW_SAMPLES = 30 * SAMPLE_RATE  # WhisperFeatureExtractor: chunk_length 30 s
MAX_SIDE = 2**20  # pixels on one side of an image (a million): beyond it no rule is meaningful
MAX_CANDIDATES = 10_000  # canvases best_fit_resolution compares


def _count(value: int) -> str:
    """``1,048,576``, or the number of digits of a count too long to print."""
    return f"{value:,}" if value < 10**18 else f"an integer of {len(str(value))} digits"


def _check_image(height: object, width: object) -> tuple[int, int]:
    """An image size in pixels: integers from 1 to :data:`MAX_SIDE` (floats cannot hold the
    products of larger ones)."""
    height, width = _check_size(height, width)
    for name, side in (("height", height), ("width", width)):
        if side > MAX_SIDE:
            raise ValueError(f"{name} must be at most {MAX_SIDE:,} pixels, got {_count(side)}")
    return height, width


def _check_sizes(owner: object, minimums: dict[str, int]) -> None:
    """The integer fields of a rule, each at least its minimum (a dataclass' __post_init__)."""
    for name, minimum in minimums.items():
        value = _check_int(name, getattr(owner, name), minimum)
        if value > MAX_SIDE * MAX_SIDE:
            raise ValueError(f"{name} must be at most {MAX_SIDE * MAX_SIDE:,}, got "
                             f"{_count(value)}")
        object.__setattr__(owner, name, value)


# ----------------------------------------------------------------------------- resize rules
def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 3136,
                 max_pixels: int = 12_845_056) -> tuple[int, int]:
    """Qwen2-VL's resize: both sides to multiples of ``factor``, pixel count clamped.

    Each side goes to the nearest multiple of ``factor`` (Python's ``round``); if the area
    is then over ``max_pixels`` both sides shrink by the same factor (rounded down to
    multiples), if under ``min_pixels`` they grow (rounded up). Aspect ratios over 200 are
    refused, as the model does. Rule of ``smart_resize`` in
    ``transformers/models/qwen2_vl/image_processing_qwen2_vl.py``.

    Returns:
        ``(resized_height, resized_width)`` in pixels.

    Raises:
        ValueError: naming the argument: a size that is not an integer from 1 to 2**20, a
            ``factor``, ``min_pixels`` or ``max_pixels`` that is not a positive integer (or
            ``min_pixels`` above ``max_pixels``), or an aspect ratio over 200.
    """
    height, width = _check_image(height, width)
    factor = _check_int("factor", factor, 1)
    if factor > MAX_SIDE:
        raise ValueError(f"factor must be at most {MAX_SIDE:,} pixels, got {_count(factor)}")
    min_pixels = _check_int("min_pixels", min_pixels, 1)
    max_pixels = _check_int("max_pixels", max_pixels, 1)
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels {min_pixels:,} must not exceed max_pixels {max_pixels:,}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"height {height} x width {width} has an aspect ratio over 200, "
                         "which Qwen2-VL's image processor refuses")
    new_height, new_width = round(height / factor) * factor, round(width / factor) * factor
    if new_height * new_width > max_pixels:
        shrink = math.sqrt(height * width / max_pixels)
        new_height = max(factor, math.floor(height / shrink / factor) * factor)
        new_width = max(factor, math.floor(width / shrink / factor) * factor)
    elif new_height * new_width < min_pixels:
        grow = math.sqrt(min_pixels / (height * width))
        new_height = math.ceil(height * grow / factor) * factor
        new_width = math.ceil(width * grow / factor) * factor
    return new_height, new_width


def best_fit_resolution(height: int, width: int,
                        candidates: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """LLaVA-NeXT's choice of canvas: the candidate that keeps the most of the image.

    The image is scaled (aspect kept) to fit each ``(height, width)`` candidate; the winner
    shows the most original pixels (never more than the image has), ties broken by the
    least wasted canvas. Rule of ``select_best_resolution`` in
    ``transformers/image_processing_utils.py``.

    Raises:
        ValueError / TypeError: naming the argument: a size that is not an integer from 1 to
            2**20; ``candidates`` that are not a non-empty list of ``(height, width)`` pairs
            of such integers (at most 10,000 of them).
    """
    height, width = _check_image(height, width)
    candidates = _check_candidates(candidates)
    best, best_shown, best_waste = candidates[0], -1, math.inf
    for canvas_height, canvas_width in candidates:
        scale = min(canvas_width / width, canvas_height / height)
        shown = min(int(width * scale) * int(height * scale), width * height)
        waste = canvas_width * canvas_height - shown
        if shown > best_shown or (shown == best_shown and waste < best_waste):
            best, best_shown, best_waste = (canvas_height, canvas_width), shown, waste
    return best


def _check_candidates(candidates: object, name: str = "candidates"
                      ) -> tuple[tuple[int, int], ...]:
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise ArgumentTypeError(f"{name} must be a list of (height, width) pairs, got "
                                f"{describe(candidates)}")
    if not 1 <= len(candidates) <= MAX_CANDIDATES:
        raise ValueError(f"{name} must hold 1 to {MAX_CANDIDATES:,} (height, width) pairs, got "
                         f"{len(candidates):,}")
    checked = []
    for index, pair in enumerate(candidates):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ArgumentTypeError(f"{name}[{index}] must be a (height, width) pair, got "
                                    f"{describe(pair)}")
        try:
            checked.append(_check_image(*pair))
        except ValueError as error:
            raise ValueError(f"{name}[{index}] is not a valid canvas: {error}") from None
    return tuple(checked)


# ----------------------------------------------------------------------------- images
@dataclass(frozen=True)
class FixedResize:
    """A model that resizes (and crops) every image to one square: LLaVA-1.5, micro-omni.

    ``tokens_per_image`` positions go to the context whatever the input size (576 for
    LLaVA-1.5: CLIP ViT-L/14 at 336 px, 24 x 24 patches, CLS dropped by
    ``vision_feature_select_strategy="default"``; see ``LlavaProcessor`` in
    ``transformers/models/llava/processing_llava.py``).
    """

    size: int
    tokens_per_image: int
    how: str = "resize the shortest side, then centre-crop"

    def __post_init__(self) -> None:
        _check_sizes(self, {"size": 1, "tokens_per_image": 0})
        check_text("how", self.how)

    def tokens(self, height: int, width: int) -> TokenCount:
        """``tokens_per_image`` context positions, whatever the size (which is checked)."""
        _check_image(height, width)
        return TokenCount(context=self.tokens_per_image)

    def describe(self, height: int, width: int) -> str:
        """One line saying how the image is resized and what it costs."""
        _check_image(height, width)
        return f"{self.how} to {self.size} x {self.size}: {self.tokens_per_image} tokens"


@dataclass(frozen=True)
class Qwen2VLImages:
    """Qwen2-VL: :func:`smart_resize`, 14-px patches, 2 x 2 merged, plus 2 delimiters.

    Tokens: ``(H' / 14)(W' / 14) / 4`` ``<|image_pad|>`` placeholders
    (``Qwen2VLProcessor.replace_image_token``: ``image_grid_thw.prod() // merge_size**2``)
    between ``<|vision_start|>`` and ``<|vision_end|>``. Defaults: Qwen2-VL-7B-Instruct's
    preprocessor_config.json (min_pixels 3136, max_pixels 12845056, patch 14, merge 2);
    set ``min_pixels`` / ``max_pixels`` as a user of the processor can.
    """

    min_pixels: int = 3136
    max_pixels: int = 12_845_056
    patch_size: int = 14
    merge_size: int = 2
    delimiters: int = 2

    def __post_init__(self) -> None:
        _check_sizes(self, {"min_pixels": 1, "max_pixels": 1, "patch_size": 1, "merge_size": 1,
                            "delimiters": 0})

    def resized(self, height: int, width: int) -> tuple[int, int]:
        """The size :func:`smart_resize` gives with this model's factor and pixel limits."""
        return smart_resize(height, width, self.patch_size * self.merge_size,
                            self.min_pixels, self.max_pixels)

    def tokens(self, height: int, width: int) -> TokenCount:
        """``<|image_pad|>`` placeholders of the resized image plus the two delimiters."""
        new_height, new_width = self.resized(height, width)
        grid = (new_height // self.patch_size) * (new_width // self.patch_size)
        return TokenCount(context=grid // self.merge_size**2 + self.delimiters)

    def describe(self, height: int, width: int) -> str:
        new_height, new_width = self.resized(height, width)
        return (f"smart_resize to {new_height} x {new_width}, one token per 28 x 28 px "
                f"+ {self.delimiters} delimiters")


LLAVA_NEXT_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))


@dataclass(frozen=True)
class LlavaNextImages:
    """LLaVA-NeXT (LLaVA-1.6) AnyRes: a tiled high-resolution view plus the base image.

    The image is placed on the best-fit canvas among ``pinpoints`` (:func:`best_fit_resolution`)
    and cut into 336-px tiles (24 x 24 patches each); the padding around the scaled image is
    removed again from the feature grid ("unpadding"), one newline token ends each row, and
    the 576 tokens of the whole image resized to 336 px come on top. Rules of
    ``LlavaNextProcessor._get_number_of_features`` and ``_get_unpadded_features`` in
    ``transformers/models/llava_next/processing_llava_next.py``; pinpoints of
    llava-hf/llava-v1.6-mistral-7b-hf's ``image_grid_pinpoints``. The often-quoted "up to
    2880 tokens" is 5 x 576: it leaves out the newline tokens (the maximum here is 2928).
    """

    pinpoints: tuple[tuple[int, int], ...] = LLAVA_NEXT_PINPOINTS
    tile_size: int = 336
    patch_size: int = 14

    def __post_init__(self) -> None:
        _check_sizes(self, {"tile_size": 1, "patch_size": 1})
        if self.patch_size > self.tile_size:
            raise ValueError(f"patch_size {self.patch_size} must not exceed tile_size "
                             f"{self.tile_size}")
        pinpoints = _check_candidates(self.pinpoints, "pinpoints")
        for canvas in pinpoints:
            if canvas[0] % self.tile_size or canvas[1] % self.tile_size:
                raise ValueError(f"pinpoints must be multiples of tile_size {self.tile_size} "
                                 f"(whole tiles), got {canvas}")
        object.__setattr__(self, "pinpoints", pinpoints)

    def _grid(self, height: int, width: int) -> tuple[int, int, int, int]:
        height, width = _check_image(height, width)
        canvas_height, canvas_width = best_fit_resolution(height, width, self.pinpoints)
        side = self.tile_size // self.patch_size
        rows = side * (canvas_height // self.tile_size)
        cols = side * (canvas_width // self.tile_size)
        if width / height > cols / rows:  # wider than the canvas: padding above and below
            kept = int(round(height * (cols / width), 7))
            rows -= 2 * ((rows - kept) // 2)
        else:
            kept = int(round(width * (rows / height), 7))
            cols -= 2 * ((cols - kept) // 2)
        return canvas_height, canvas_width, rows, cols

    def tokens(self, height: int, width: int) -> TokenCount:
        """Tile features after unpadding + one newline per row + the base image's 576."""
        _, _, rows, cols = self._grid(height, width)
        base = (self.tile_size // self.patch_size) ** 2
        return TokenCount(context=rows * cols + rows + base)

    def describe(self, height: int, width: int) -> str:
        """One line naming the canvas, the feature grid and the newlines."""
        canvas_height, canvas_width, rows, cols = self._grid(height, width)
        base = (self.tile_size // self.patch_size) ** 2
        return (f"AnyRes canvas {canvas_height} x {canvas_width}: {rows} x {cols} features "
                f"after unpadding + {rows} newlines + {base} for the base image")


@dataclass(frozen=True)
class Idefics3Images:
    """Idefics3: resize, split into 364-px tiles plus a global image, 169 tokens each.

    The longest side is resized to ``longest_edge`` (up or down, even sizes), then both sides
    are rounded up to multiples of ``tile_size`` and the image is cut into rows x cols tiles
    plus one global view (``Idefics3ImageProcessorPil.resize``, ``resize_for_vision_encoder``,
    ``split_images`` in ``transformers/models/idefics3/image_processing_pil_idefics3.py``).
    Each tile is 26 x 26 patches of 14 px, pixel-shuffled by 2 x 2 into 169 ``<image>``
    tokens. ``Idefics3Processor.replace_image_token`` (processing_idefics3.py) wraps each tile
    as ``<fake_token_around_image><row_r_col_c>`` + 169 tokens, ends each row with a line
    break and the global image as ``<fake_token_around_image><global-img>`` + 169 +
    ``<fake_token_around_image>``. The rows' line breaks are one token each; the last one
    and the one before the global image merge into a single ``"\\n\\n"`` token in Llama 3's
    tokenizer, so they add ``rows`` tokens. Defaults: HuggingFaceM4/Idefics3-8B-Llama3
    (size longest_edge 1456, max_image_size 364, image_seq_len 169).
    """

    longest_edge: int = 1456
    tile_size: int = 364
    tokens_per_tile: int = 169
    max_image_size: int = 4096  # MAX_IMAGE_SIZE in the image processor

    def __post_init__(self) -> None:
        _check_sizes(self, {"longest_edge": 1, "tile_size": 1, "tokens_per_tile": 0,
                            "max_image_size": 1})

    def tiles(self, height: int, width: int) -> tuple[int, int]:
        """``(rows, cols)`` of the split (``(0, 0)``: the image is not split)."""
        height, width = _check_image(height, width)
        aspect = width / height
        if width >= height:  # _resize_output_size_rescale_to_max_len
            width, height = self.longest_edge, int(self.longest_edge / aspect)
            height += height % 2
        else:
            height, width = self.longest_edge, int(self.longest_edge * aspect)
            width += width % 2
        height, width = max(height, 1), max(width, 1)
        aspect = width / height  # _resize_output_size_scale_below_upper_bound
        if width >= height and width > self.max_image_size:
            width, height = self.max_image_size, int(self.max_image_size / aspect)
        elif height > width and height > self.max_image_size:
            height, width = self.max_image_size, int(self.max_image_size * aspect)
        height, width = max(height, 1), max(width, 1)
        aspect, tile = width / height, self.tile_size  # resize_for_vision_encoder
        if width >= height:
            width = math.ceil(width / tile) * tile
            height = math.ceil(int(width / aspect) / tile) * tile
        else:
            height = math.ceil(height / tile) * tile
            width = math.ceil(int(height * aspect) / tile) * tile
        if height > tile or width > tile:
            return height // tile, width // tile
        return 0, 0

    def tokens(self, height: int, width: int) -> TokenCount:
        """169 tokens per tile and for the global image, plus the wrapper tokens."""
        rows, cols = self.tiles(height, width)
        global_image = self.tokens_per_tile + 3  # <fake><global-img> ... <fake>
        if rows == 0:
            return TokenCount(context=global_image)
        return TokenCount(context=rows * cols * (self.tokens_per_tile + 2) + rows + global_image)

    def describe(self, height: int, width: int) -> str:
        """One line naming the tiles and their tokens."""
        rows, cols = self.tiles(height, width)
        return (f"{rows} x {cols} tiles of {self.tile_size} px + 1 global image, "
                f"{self.tokens_per_tile} tokens each, + wrapper tokens")


@dataclass(frozen=True)
class ResamplerImages:
    """Flamingo: a Perceiver Resampler turns each image into ``num_latents`` latents that the
    LM reads through gated cross-attention (memory); its text holds one ``<image>`` marker
    per image (context). Alayrac et al. 2022, arXiv:2204.14198, sections 2.1 and 2.3.
    """

    num_latents: int = 64
    markers: int = 1

    def __post_init__(self) -> None:
        _check_sizes(self, {"num_latents": 0, "markers": 0})

    def tokens(self, height: int, width: int) -> TokenCount:
        """``markers`` in the context, ``num_latents`` in memory, whatever the size."""
        _check_image(height, width)
        return TokenCount(context=self.markers, memory=self.num_latents)

    def describe(self, height: int, width: int) -> str:
        """One line: the marker in the text and the latents read through cross-attention."""
        _check_image(height, width)
        return (f"{self.markers} <image> marker in the text; {self.num_latents} resampled "
                "latents read through cross-attention")


# ----------------------------------------------------------------------------- audio
def whisper_feature_frames(num_samples: int, hop_length: int = 160) -> int:
    """Frames the Whisper feature extractor's attention mask keeps: ceil(samples / hop).

    ``WhisperFeatureExtractor.__call__`` (feature_extraction_whisper.py) samples the
    sample-level mask every ``hop_length`` samples: frame ``t`` is kept if sample ``t x hop``
    is real audio, so a clip keeps ``ceil(num_samples / hop)`` frames.
    """
    _check_int("num_samples", num_samples, 0)
    _check_int("hop_length", hop_length, 1)
    return -(-num_samples // hop_length)


@dataclass(frozen=True)
class Qwen2AudioClips:
    """Qwen2-Audio: each clip cut at 30 s, Whisper-large-v3 encoder + stride-2 pooling.

    ``Qwen2AudioProcessor._process_audio`` (processing_qwen2_audio.py) pads or truncates the
    clip to 30 s (480,000 samples), takes ``L = ceil(samples / 160)`` feature frames (see
    :func:`whisper_feature_frames`), and writes ``((L - 1) // 2 + 1 - 2) // 2 + 1``
    ``<|AUDIO|>`` tokens (conv stride 2, then pool stride 2: at most 750), between
    ``<|audio_bos|>`` and ``<|audio_eos|>`` (its chat template). A clip of 2 frames or less
    gets 0 audio tokens.
    """

    max_seconds: float = 30.0
    delimiters: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_seconds", check_number("max_seconds", self.max_seconds,
                                                             above=0, maximum=3600))
        _check_sizes(self, {"delimiters": 0})

    def audio_tokens(self, seconds: float) -> int:
        """``<|AUDIO|>`` tokens of a clip of ``seconds`` (cut at ``max_seconds``)."""
        samples = seconds_to_samples(seconds, SAMPLE_RATE)
        frames = whisper_feature_frames(min(samples, round(self.max_seconds * SAMPLE_RATE)))
        return max(((frames - 1) // 2 + 1 - 2) // 2 + 1, 0)

    def tokens(self, seconds: float) -> TokenCount:
        """The audio tokens plus the two delimiters (0 s: no clip, no tokens)."""
        if _check_seconds(seconds) == 0:
            return TokenCount()
        return TokenCount(context=self.audio_tokens(seconds) + self.delimiters)

    def describe(self, seconds: float) -> str:
        """One line: the clip (cut at 30 s) and its tokens."""
        seconds = _check_seconds(seconds)
        cut = " (cut at 30 s)" if seconds > self.max_seconds else ""
        return (f"{min(seconds, self.max_seconds):g} s{cut} -> {self.audio_tokens(seconds)} "
                f"<|AUDIO|> + {self.delimiters} delimiters")


@dataclass(frozen=True)
class WhisperWindows:
    """Whisper: every 30 s window is padded to 3000 frames and encoded to 1500 positions.

    The decoder reads them through cross-attention (memory), one window at a time; its own
    text context is 448 positions (``max_target_positions``). Frames: WhisperFeatureExtractor
    pads to ``n_samples`` = 480,000 and keeps 3000 (``nb_max_frames``); the encoder's conv
    (stride 1) and conv (stride 2) halve them (modeling_whisper.py, ``WhisperEncoder``).
    Radford et al. 2022, arXiv:2212.04356. Longer clips are transcribed window after window.
    """

    positions_per_window: int = 1500

    def __post_init__(self) -> None:
        _check_sizes(self, {"positions_per_window": 0})

    def windows(self, seconds: float) -> int:
        """How many 30 s windows a clip of ``seconds`` needs."""
        return -(-seconds_to_samples(seconds, SAMPLE_RATE) // WHISPER_WINDOW_SAMPLES)

    def tokens(self, seconds: float) -> TokenCount:
        """1500 memory positions per window (none in the decoder's context)."""
        return TokenCount(memory=self.windows(seconds) * self.positions_per_window)

    def describe(self, seconds: float) -> str:
        """One line: windows and their encoder positions."""
        return (f"{self.windows(seconds)} x 30 s window of {self.positions_per_window} "
                "encoder positions, read through cross-attention")
