"""First-principles token counts: STFT frames, convolution lengths, ViT patch grids.

Everything here is counted, not estimated: the audio formulas are the frame count of
``torch.stft`` followed by the output length of ``nn.Conv1d``, the image formulas are the
patch grid of a ViT, and the tests check both against the real operations and against the
course's own encoders. :class:`TokenCount` says where a count goes: positions in the language
model's own sequence (``context``) or encoder positions it reads through cross-attention
(``memory``). The real models' resize and truncation rules build on these in
:mod:`course_lib.budget_processors`; everything is importable from :mod:`course_lib.budget`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IMAGE_MODES = ("cls", "patches", "patches+cls", "resampler")
FRAMINGS = ("centre", "centre-drop-last", "no-padding")
ConvLayer = tuple[int, int, int]  # (kernel_size, stride, padding)
STRIDE2_CONV: ConvLayer = (3, 2, 1)


def _check_int(name: str, value: object, minimum: int) -> int:
    """An integer (Python or numpy, not bool) of at least ``minimum``, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


MAX_SECONDS = 10**7  # about 116 days of audio: beyond it no count is meaningful
MAX_LAYERS = 10_000  # layers in one downsampling stack


def _check_seconds(seconds: object, name: str = "seconds") -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {seconds!r}")
    if isinstance(seconds, int) and seconds > MAX_SECONDS:  # before float(): 10**400 overflows
        raise ValueError(f"{name} must be at most {MAX_SECONDS:,} s (about 116 days), got "
                         f"an integer of {len(str(seconds))} digits")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {seconds!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{name} must be at most {MAX_SECONDS:,} s (about 116 days), got "
                         f"{seconds:g}")
    return float(seconds)


def _check_size(height: object, width: object) -> tuple[int, int]:
    """An image size in pixels: both integers >= 1 (a zero-size image has no pixels)."""
    return _check_int("height", height, 1), _check_int("width", width, 1)


@dataclass(frozen=True)
class TokenCount:
    """Where an input's tokens go.

    Args:
        context: positions in the language model's own sequence (they use the context window).
        memory: encoder positions the language model (or decoder) reads through
            cross-attention (Whisper's 1500 per 30 s, Flamingo's 64 latents per image): they
            cost compute and K/V memory but no context positions.
    """

    context: int = 0
    memory: int = 0

    def __post_init__(self) -> None:
        _check_int("context", self.context, 0)
        _check_int("memory", self.memory, 0)

    def __add__(self, other: TokenCount) -> TokenCount:
        if not isinstance(other, TokenCount):
            return NotImplemented
        return TokenCount(self.context + other.context, self.memory + other.memory)

    def times(self, count: int) -> TokenCount:
        """``count`` copies of this input (``count`` images of the same size)."""
        _check_int("count", count, 0)
        return TokenCount(count * self.context, count * self.memory)


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
    """Length after a stack of convolution/pooling layers, each ``(kernel, stride, padding)``.

    Raises:
        ValueError: naming the argument, for a bad length, a layer that is not three integers,
            or a stack of more than :data:`MAX_LAYERS` layers.
    """
    _check_int("length", length, 1)
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a list of (kernel_size, stride, padding) tuples, got "
                         f"{type(layers).__name__}")
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"layers must hold at most {MAX_LAYERS:,} layers, got {len(layers):,}")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Sequence) or len(layer) != 3:
            raise ValueError(f"layers[{index}] must be (kernel_size, stride, padding), got "
                             f"{layer!r}")
        length = conv_output_length(length, *layer)
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
    # Each convolution maps L to ceil(L / 2), so a length of 1 stays 1: past the number of
    # halvings that reach 1 the remaining layers change nothing (and need not be built).
    needed = min(num_downsample_convs, frames.bit_length() + 1)
    return downsampled_length(frames, [STRIDE2_CONV] * needed)


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


WHISPER_CONVS: tuple[ConvLayer, ...] = ((3, 1, 1), (3, 2, 1))  # conv (stride 1), conv (stride 2)
QWEN2_AUDIO_LAYERS: tuple[ConvLayer, ...] = WHISPER_CONVS + ((2, 2, 0),)  # + stride-2 pool
