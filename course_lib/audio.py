"""Audio encoder: waveform -> log-mel spectrogram -> stride-2 convolutions -> transformer.

At 16 kHz with a 400-sample window (25 ms) and a 160-sample hop (10 ms) you get 100 frames
per second (101 for one second with centre padding). Each stride-2 convolution (kernel 3,
padding 1) maps a length L to ceil(L / 2), so three of them turn 101 frames into
51 -> 26 -> 13 tokens: 100 / 8 = 12.5 tokens per second.

About empty mel filters: 128 mel bands over the 201 FFT bins of a 400-point FFT are
narrower than one bin at low frequencies, so some triangles fall between two bins and are
all zero (torchaudio warns about it; this module does not). Those mel rows stay at the log
floor; the reference design accepts that.

Nothing here needs torchaudio: the spectrogram is ``torch.stft`` and the filters are
:func:`mel_filterbank`. The tests compare both with torchaudio's where it loads.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    MAX_TOKENS,
    ArgumentTypeError,
    check_allocation,
    check_flag,
    check_int,
    check_number,
    check_tensor,
    describe,
    to_weights_dtype,
)
from course_lib.attention import encoder_layers

EMPTY_FILTER_WARNING = "At least one mel filterbank has all zero values"  # torchaudio's
LOG_FLOOR = 1e-10  # power below this is clamped before the log: log(1e-10) = -23.03
MAX_SAMPLE_RATE = 1_000_000  # samples per second
MAX_N_FFT = 2**16  # samples per window
MAX_DOWNSAMPLE_CONVS = 32  # stride-2 convolutions (2**32 is longer than any clip)


def _frequencies(name: str, value: Any) -> torch.Tensor:
    """A non-negative real number, or a real tensor / numpy array of them, as float64."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        tensor = check_tensor(name, value, kind=None)
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise ArgumentTypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
        tensor = tensor.to(torch.float64)
        if tensor.device.type != "meta" and tensor.numel():
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{name} contains NaN or inf")
            if bool((tensor < 0).any()):
                raise ValueError(f"{name} must be non-negative, got a minimum of "
                                 f"{float(tensor.min()):g}")
        return tensor
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be a real number or a tensor of them, got "
                                f"{describe(value)}")
    return torch.tensor(check_number(name, value, minimum=0), dtype=torch.float64)


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: mel = 2595 * log10(1 + hz / 700), in float64.

    Shape:
        hz: a number or a tensor (...,) of frequencies >= 0 in Hz; output: the same shape.
    """
    return 2595.0 * torch.log10(1.0 + _frequencies("hz", hz) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`: hz = 700 * (10 ** (mel / 2595) - 1), in float64.

    Shape:
        mel: a number or a tensor (...,) of mels >= 0; output: the same shape.
    """
    return 700.0 * (10.0 ** (_frequencies("mel", mel) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Triangular filters, equally spaced on the mel scale, over the FFT bin frequencies.

    Filter m rises linearly from 0 at edge m to 1 at edge m + 1 and falls back to 0 at
    edge m + 2, where the n_mels + 2 edges are equally spaced in mel from f_min to f_max.

    Args:
        n_freqs: number of FFT bins (n_fft // 2 + 1), spanning 0 .. sample_rate / 2 Hz.
        n_mels: number of mel filters.
        sample_rate: samples per second.
        f_min, f_max: frequency range in Hz (f_max defaults to sample_rate / 2).
        dtype: of the result; it is computed in float64 either way. (torchaudio computes in
            the default dtype, float32, whose rounding moves narrow filters by up to ~2e-5.)

    Shape:
        output: (n_freqs, n_mels), as torchaudio.functional.melscale_fbanks returns.
    """
    check_int("n_freqs", n_freqs, minimum=2)
    check_int("n_mels", n_mels, minimum=1)
    check_int("sample_rate", sample_rate, minimum=1, maximum=MAX_SAMPLE_RATE)
    check_allocation("n_freqs * n_mels", n_freqs * n_mels, MAX_ELEMENTS, "filter values")
    f_min = check_number("f_min", f_min)
    f_max = sample_rate / 2 if f_max is None else check_number("f_max", f_max)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ArgumentTypeError(f"dtype must be a floating torch.dtype, got {describe(dtype)}")
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
            f"sample_rate={sample_rate}"
        )
    bin_hz = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (n_freqs,)
    edges_mel = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                               dtype=torch.float64)
    edges_hz = mel_to_hz(edges_mel)  # (n_mels + 2,)
    left, centre, right = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]  # each (n_mels,)
    rising = (bin_hz[:, None] - left) / (centre - left)  # (n_freqs, n_mels)
    falling = (right - bin_hz[:, None]) / (right - centre)
    return torch.minimum(rising, falling).clamp(min=0.0).to(dtype)


def mu_law_decode(codes: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Integer mu-law codes back to samples in [-1, 1] (ITU-T G.711's companding curve).

    With mu = quantization_channels - 1 and y = 2 * code / mu - 1:
    x = sign(y) * ((1 + mu) ** |y| - 1) / mu. Computed in float32 with the same operations as
    ``torchaudio.functional.mu_law_decoding``, so both give the same numbers.

    Args:
        codes: integers in [0, quantization_channels - 1] (a tensor or a NumPy array).
        quantization_channels: levels of the code (256 = 8-bit).

    Shape:
        codes: (...,); output: (...,) float32.
    """
    if not isinstance(codes, (torch.Tensor, np.ndarray)) or (
            isinstance(codes, np.ndarray) and codes.dtype.kind not in "biufc"):
        raise ArgumentTypeError(f"codes must be integers in a tensor or a NumPy array, got "
                                f"{describe(codes)}")
    codes = torch.as_tensor(codes)
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ArgumentTypeError(f"codes must be integers, got dtype {codes.dtype}")
    check_int("quantization_channels", quantization_channels, minimum=2)
    if quantization_channels > 2**24:
        raise ValueError(f"quantization_channels must be at most 2**24, got "
                         f"{quantization_channels}")
    if codes.numel() and (codes.min() < 0 or codes.max() > quantization_channels - 1):
        raise ValueError(f"codes must lie in [0, {quantization_channels - 1}], got "
                         f"[{int(codes.min())}, {int(codes.max())}]")
    mu = torch.tensor(quantization_channels - 1.0, dtype=torch.float32)
    y = codes.to(torch.float32) / mu * 2 - 1.0
    return torch.sign(y) * (torch.exp(torch.abs(y) * torch.log1p(mu)) - 1.0) / mu


def num_frames(num_samples: int, n_fft: int = 400, hop_length: int = 160,
               center: bool = True) -> int:
    """Frames of a short-time Fourier transform: 1 + L // hop (centred) or
    1 + (L - n_fft) // hop (not centred), for L = ``num_samples``."""
    check_int("num_samples", num_samples, minimum=0)
    check_int("n_fft", n_fft, minimum=1, maximum=MAX_N_FFT)
    check_int("hop_length", hop_length, minimum=1)
    check_flag("center", center)
    if center:
        return 1 + num_samples // hop_length
    if num_samples < n_fft:
        raise ValueError(f"num_samples {num_samples} is shorter than one window n_fft={n_fft}")
    return 1 + (num_samples - n_fft) // hop_length


def downsampled_length(length: int, num_downsample_convs: int = 3) -> int:
    """Length after ``num_downsample_convs`` stride-2 convolutions (kernel 3, padding 1).

    Each maps L to floor((L + 2 * 1 - 3) / 2) + 1 = ceil(L / 2).
    """
    check_int("length", length, minimum=0)
    check_int("num_downsample_convs", num_downsample_convs, minimum=0,
              maximum=MAX_DOWNSAMPLE_CONVS)
    for _ in range(num_downsample_convs):
        length = (length + 2 - 3) // 2 + 1
    return length


def log_mel_spectrogram(waveform: torch.Tensor, sample_rate: int = 16000, n_fft: int = 400,
                        hop_length: int = 160, n_mels: int = 128,
                        center: bool = True) -> torch.Tensor:
    """log(max(mel power, 1e-10)): a Hann-windowed ``torch.stft``, power 2, then
    :func:`mel_filterbank` (what torchaudio's ``MelSpectrogram`` computes, without torchaudio).

    Args:
        waveform: samples in [-1, 1] at ``sample_rate``.
        n_fft: window length in samples (400 = 25 ms at 16 kHz).
        hop_length: step between frames in samples (160 = 10 ms -> 100 frames/s).
        n_mels: number of mel bands.
        center: pad n_fft // 2 samples (reflecting) on each side, so frame t is centred
            on sample t * hop_length.

    Shape:
        waveform: (..., L)
        output: (..., n_mels, frames) with frames = :func:`num_frames` (L, ...), on the
        waveform's device and in its dtype.
    """
    waveform = check_tensor("waveform", waveform, shape=(..., "L"))
    check_int("sample_rate", sample_rate, minimum=1, maximum=MAX_SAMPLE_RATE)
    check_int("n_fft", n_fft, minimum=2, maximum=MAX_N_FFT)
    check_int("hop_length", hop_length, minimum=1)
    check_int("n_mels", n_mels, minimum=1)
    check_flag("center", center)
    length = waveform.shape[-1]
    if not center and length < n_fft:
        raise ValueError(
            f"waveform has {length} samples, shorter than one window (n_fft={n_fft}) with "
            "center=False"
        )
    if center and length <= n_fft // 2:
        raise ValueError(
            f"waveform has {length} samples; centre padding needs more than n_fft // 2 = "
            f"{n_fft // 2}"
        )
    rows = math.prod(waveform.shape[:-1])
    frames = num_frames(length, n_fft, hop_length, center)
    check_allocation("waveform's spectrogram (clips * (n_fft // 2 + 1) * frames)",
                     rows * (n_fft // 2 + 1) * frames, MAX_ELEMENTS, "values")
    check_allocation("clips * n_mels * frames", rows * n_mels * frames, MAX_ELEMENTS, "values")
    # Built per call (tens of microseconds), so no cached tensor can be changed by a caller.
    window = torch.hann_window(n_fft, periodic=True, dtype=waveform.dtype,
                               device=waveform.device)
    filters = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, dtype=waveform.dtype)
    spectrum = torch.stft(waveform.reshape(-1, length), n_fft=n_fft, hop_length=hop_length,
                          win_length=n_fft, window=window, center=center, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
    power = spectrum.abs() ** 2  # (B, n_fft // 2 + 1, frames)
    mel_power = filters.to(waveform.device).T @ power  # (B, n_mels, frames)
    return torch.log(mel_power.clamp(min=LOG_FLOOR)).reshape(*waveform.shape[:-1], n_mels, -1)


@dataclass(frozen=True)
class LogMelFrontEnd:
    """One chapter's audio features: crop or pad each clip, then :func:`log_mel_spectrogram`.

    Every chapter that needs log-mel features builds one of these and prints
    :meth:`describe`, so the settings of its features are stated in one line. The front-end
    holds only these numbers (it is frozen): the Hann window and the filters are built per
    call, so no call can change what the next one returns. (``course_lib.budget``'s
    ``AudioFrontEnd`` counts the frames and tokens of a design without computing anything;
    this class computes the features.)

    Args:
        sample_rate: samples per second of the waveforms.
        n_fft: window length in samples (400 = 25 ms at 16 kHz); also the FFT size.
        hop_length: step between frames in samples (160 = 10 ms -> 100 frames/s).
        n_mels: mel bands (rows of the output).
        clip_seconds: every clip is cut to this length, or padded with zeros (silence) at the
            end; ``None`` keeps each batch's own length.

    Shape:
        waveforms: (..., L), e.g. (B, L)
        output: (..., n_mels, frames) with frames = :meth:`frames` () (centre padding:
        1 + clip_samples // hop_length), in the waveforms' dtype and on their device.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    clip_seconds: float | None = None

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, minimum=1, maximum=MAX_SAMPLE_RATE)
        check_int("n_fft", self.n_fft, minimum=2, maximum=MAX_N_FFT)
        check_int("hop_length", self.hop_length, minimum=1)
        check_int("n_mels", self.n_mels, minimum=1)
        check_allocation("n_mels * (n_fft // 2 + 1)", self.n_mels * (self.n_fft // 2 + 1),
                         MAX_ELEMENTS, "filter values")
        if self.clip_seconds is not None:
            seconds = check_number("clip_seconds", self.clip_seconds, above=0)
            samples = round(seconds * self.sample_rate)
            if samples <= self.n_fft // 2:
                raise ValueError(
                    f"clip_seconds {seconds:g} gives {samples} samples at {self.sample_rate} Hz; "
                    f"centre padding needs more than n_fft // 2 = {self.n_fft // 2}"
                )
            check_allocation("clip_seconds * sample_rate", samples, MAX_ELEMENTS, "samples")

    @property
    def clip_samples(self) -> int | None:
        """Samples per clip (round(clip_seconds * sample_rate)), or None for any length."""
        if self.clip_seconds is None:
            return None
        return round(self.clip_seconds * self.sample_rate)

    def frames(self, num_samples: int | None = None) -> int:
        """Frames that the front-end returns for inputs of ``num_samples`` samples.

        With ``clip_seconds`` set every input is cut or padded to the clip first, so the
        answer is the clip's 1 + clip_samples // hop_length whatever ``num_samples`` is (it
        may be left out); with ``clip_seconds=None`` it is 1 + num_samples // hop_length.
        """
        if num_samples is not None:
            check_int("num_samples", num_samples, minimum=1)
        if self.clip_samples is not None:
            num_samples = self.clip_samples
        elif num_samples is None:
            raise ValueError("num_samples is needed: this front-end has clip_seconds=None")
        return num_frames(num_samples, self.n_fft, self.hop_length, center=True)

    def describe(self) -> str:
        """One line, e.g. "16 kHz, 25 ms window, 10 ms hop, 40 mel bins, 0.7 s clips"."""
        clips = ("clips of any length" if self.clip_seconds is None
                 else f"{self.clip_seconds:g} s clips")
        return (f"{self.sample_rate / 1000:g} kHz, {1000 * self.n_fft / self.sample_rate:g} ms "
                f"window, {1000 * self.hop_length / self.sample_rate:g} ms hop, {self.n_mels} mel "
                f"bins, {clips}")

    def __call__(self, waveforms: torch.Tensor) -> torch.Tensor:
        waveforms = check_tensor("waveforms", waveforms, shape=(..., "L"))
        target = self.clip_samples
        if target is not None:
            length = waveforms.shape[-1]
            if length >= target:
                waveforms = waveforms[..., :target]
            else:
                waveforms = torch.nn.functional.pad(waveforms, (0, target - length))
        elif waveforms.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"waveforms have {waveforms.shape[-1]} samples; centre padding needs "
                             f"more than n_fft // 2 = {self.n_fft // 2}")
        return log_mel_spectrogram(waveforms, self.sample_rate, self.n_fft, self.hop_length,
                                   self.n_mels, center=True)


def empty_mel_filters(n_fft: int, n_mels: int, sample_rate: int = 16000) -> int:
    """How many of the ``n_mels`` triangular filters touch no FFT bin (all-zero columns)."""
    check_int("n_fft", n_fft, minimum=2, maximum=MAX_N_FFT)
    check_int("n_mels", n_mels, minimum=1)
    check_int("sample_rate", sample_rate, minimum=1, maximum=MAX_SAMPLE_RATE)
    return _empty_mel_filters(int(n_fft), int(n_mels), int(sample_rate))


@functools.lru_cache(maxsize=256)
def _empty_mel_filters(n_fft: int, n_mels: int, sample_rate: int) -> int:
    filters = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate)
    return int((filters.sum(dim=0) == 0).sum())


@contextlib.contextmanager
def _one_thread():
    # One clip's STFT is tiny: on a busy 2-core machine, splitting it over threads was
    # measured ~100x slower than one thread. Restores the previous setting afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def mel_explorer_data(waveform: torch.Tensor, sample_rate: int, n_fft: int, hop_length: int,
                      n_mels: int) -> dict:
    """What the mel explorer shows for one setting: the log-mel image and its read-outs.

    Shape:
        waveform: (L,); ``"log_mel"``: (n_mels, frames).
    """
    waveform = check_tensor("waveform", waveform, shape=("L",))
    with _one_thread(), torch.no_grad():
        log_mel = log_mel_spectrogram(waveform, sample_rate, n_fft, hop_length, n_mels)
        empty_filters = empty_mel_filters(n_fft, n_mels, sample_rate)
    return {
        "log_mel": log_mel,  # (n_mels, frames)
        "frames": log_mel.shape[-1],
        "frames_per_second": sample_rate / hop_length,
        "window_ms": 1000 * n_fft / sample_rate,
        "hop_ms": 1000 * hop_length / sample_rate,
        "hz_per_fft_bin": sample_rate / n_fft,
        "empty_filters": empty_filters,
        "tokens_after_3_convs": downsampled_length(log_mel.shape[-1], 3),
    }


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position vectors (as in the Transformer paper), for any length.

    Shape:
        output: (length, dim)
    """
    check_int("length", length, minimum=0, maximum=MAX_TOKENS)
    check_int("dim", dim, minimum=1)
    check_allocation("length * dim", length * dim, MAX_ELEMENTS, "values")
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class AudioEncoder(nn.Module):
    """Log-mel frames -> stride-2 Conv1d stack (8x shorter for 3 convs) -> transformer.

    Args:
        n_mels: mel bands of the input (its channels).
        dim: width of the output tokens.
        depth: number of pre-norm transformer blocks.
        num_heads: attention heads (must divide ``dim``).
        num_downsample_convs: stride-2 convolutions (kernel 3, padding 1), GELU after each.

    Shape:
        mel: (B, n_mels, frames)
        output: (B, T', dim) with T' = :func:`downsampled_length` (frames, num_downsample_convs)
    """

    def __init__(self, n_mels: int, dim: int, depth: int, num_heads: int,
                 num_downsample_convs: int = 3, mlp_ratio: int = 4) -> None:
        super().__init__()
        check_int("n_mels", n_mels, minimum=1)
        check_int("dim", dim, minimum=1)
        check_int("num_heads", num_heads, minimum=1)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if dim % 2:
            raise ValueError(f"dim must be even (sinusoidal positions), got {dim}")
        check_int("depth", depth, minimum=1, maximum=1_024)
        check_int("num_downsample_convs", num_downsample_convs, minimum=1,
                  maximum=MAX_DOWNSAMPLE_CONVS)
        check_int("mlp_ratio", mlp_ratio, minimum=1)
        check_allocation("dim * mlp_ratio * dim", dim * mlp_ratio * dim, MAX_ELEMENTS, "weights")
        check_allocation("n_mels * dim * 3", n_mels * dim * 3, MAX_ELEMENTS, "weights")
        self.n_mels, self.dim, self.num_downsample_convs = n_mels, dim, num_downsample_convs
        layers: list[nn.Module] = []
        for index in range(num_downsample_convs):
            layers += [nn.Conv1d(n_mels if index == 0 else dim, dim, kernel_size=3, stride=2,
                                 padding=1), nn.GELU()]
        self.downsample = nn.Sequential(*layers)
        self.blocks = encoder_layers(dim, num_heads, depth, mlp_ratio)
        self.final_norm = nn.LayerNorm(dim)

    def output_length(self, frames: int) -> int:
        """Tokens out for ``frames`` frames in."""
        check_int("frames", frames, minimum=0)
        return downsampled_length(frames, self.num_downsample_convs)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) log-mel -> (B, T', dim) tokens (see the class docstring)."""
        mel = to_weights_dtype("mel", mel, self, ndim=3)
        if mel.shape[1] != self.n_mels or mel.shape[2] < 1:
            raise ValueError(
                f"mel must have shape (B, n_mels={self.n_mels}, frames >= 1), got "
                f"{tuple(mel.shape)}"
            )
        tokens = self.downsample(mel).transpose(1, 2)  # (B, T', dim)
        tokens = tokens + sinusoidal_positions(tokens.shape[1], self.dim).to(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.final_norm(tokens)
