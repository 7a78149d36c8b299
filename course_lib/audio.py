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

import torch
from torch import nn

from course_lib.attention import encoder_layers

EMPTY_FILTER_WARNING = "At least one mel filterbank has all zero values"  # torchaudio's
LOG_FLOOR = 1e-10  # power below this is clamped before the log: log(1e-10) = -23.03


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: mel = 2595 * log10(1 + hz / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`: hz = 700 * (10 ** (mel / 2595) - 1)."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


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
    f_max = sample_rate / 2 if f_max is None else f_max
    if n_freqs < 2:
        raise ValueError(f"n_freqs must be at least 2, got {n_freqs}")
    if n_mels < 1:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
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
    codes = torch.as_tensor(codes)
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
    if quantization_channels < 2:
        raise ValueError(f"quantization_channels must be at least 2, got {quantization_channels}")
    if codes.numel() and (codes.min() < 0 or codes.max() > quantization_channels - 1):
        raise ValueError(f"codes must lie in [0, {quantization_channels - 1}], got "
                         f"[{int(codes.min())}, {int(codes.max())}]")
    mu = torch.tensor(quantization_channels - 1.0, dtype=torch.float32)
    y = codes.to(torch.float32) / mu * 2 - 1.0
    return torch.sign(y) * (torch.exp(torch.abs(y) * torch.log1p(mu)) - 1.0) / mu


def num_frames(num_samples: int, n_fft: int = 400, hop_length: int = 160,
               center: bool = True) -> int:
    """Frames of a short-time Fourier transform: 1 + L // hop (centred) or
    1 + (L - n_fft) // hop (not centred)."""
    if center:
        return 1 + num_samples // hop_length
    if num_samples < n_fft:
        raise ValueError(f"num_samples {num_samples} is shorter than one window n_fft={n_fft}")
    return 1 + (num_samples - n_fft) // hop_length


def downsampled_length(length: int, num_downsample_convs: int = 3) -> int:
    """Length after ``num_downsample_convs`` stride-2 convolutions (kernel 3, padding 1).

    Each maps L to floor((L + 2 * 1 - 3) / 2) + 1 = ceil(L / 2).
    """
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
    if waveform.ndim < 1 or not waveform.is_floating_point():
        raise ValueError(f"waveform must be a float tensor (..., L), got {waveform.dtype} "
                         f"of shape {tuple(waveform.shape)}")
    for name, value in (("sample_rate", sample_rate), ("n_fft", n_fft),
                        ("hop_length", hop_length), ("n_mels", n_mels)):
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
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


@functools.lru_cache(maxsize=256)
def empty_mel_filters(n_fft: int, n_mels: int, sample_rate: int = 16000) -> int:
    """How many of the ``n_mels`` triangular filters touch no FFT bin (all-zero columns)."""
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
    """What the mel explorer shows for one setting: the log-mel image and its read-outs."""
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
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if dim % 2:
            raise ValueError(f"dim must be even (sinusoidal positions), got {dim}")
        if num_downsample_convs < 1:
            raise ValueError(f"num_downsample_convs must be at least 1, got {num_downsample_convs}")
        if depth < 1 or n_mels < 1:
            raise ValueError(f"depth and n_mels must be positive, got {depth}, {n_mels}")
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
        return downsampled_length(frames, self.num_downsample_convs)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(
                f"mel must have shape (B, n_mels={self.n_mels}, frames), got {tuple(mel.shape)}"
            )
        tokens = self.downsample(mel).transpose(1, 2)  # (B, T', dim)
        tokens = tokens + sinusoidal_positions(tokens.shape[1], self.dim).to(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.final_norm(tokens)
