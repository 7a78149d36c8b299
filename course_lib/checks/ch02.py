"""Checkers for chapter 02's exercises: ``patchify`` and ``log_mel_from_filterbank``.

The references are :func:`course_lib.vision.patchify` and the short-time Fourier transform
of chapter 02 (Hann window, centre padding by reflection, power, mel filters, natural log
with a floor of 1e-10), which equals :func:`course_lib.audio.log_mel_spectrogram`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from course_lib._validation import check_allocation, check_int, check_tensor
from course_lib.audio import mel_filterbank
from course_lib.checks._common import (
    CheckResult,
    Failed,
    call_learner,
    close,
    guarded,
    learner_result,
    learner_tensor,
    verdict,
)
from course_lib.vision import patchify as reference_patchify

LOG_FLOOR = 1e-10


_ADVICE = ("Use torch operations (reshape, permute, torch.stft) so that the result stays a "
           "tensor.")


def _tensor(value: object, who: str, shape: tuple[int, ...]) -> Tensor:
    """The learner's result as a tensor of ``shape``, or a precise :class:`Failed`."""
    return learner_result(value, who, shape, _ADVICE, floating=True,
                          reject="any NaN", detach=True)


@guarded
def check_patchify(patchify: Callable) -> CheckResult:
    """Check ``patchify(images, patch_size)``: (B, C, H, W) -> (B, N, C * p * p).

    Tried on 2 RGB images of 8 x 12 pixels with 4-pixel patches (not square, 3 channels), and
    on one grey 6 x 6 image with 3-pixel patches.
    """
    for shape, p in (((2, 3, 8, 12), 4), ((1, 1, 6, 6), 3)):
        images = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)
        who = f"patchify(images of shape {shape}, {p})"
        got = call_learner(patchify, images.clone(), p, exercise="check_patchify", name=who)
        expected = reference_patchify(images, p)
        got = _tensor(got, who, tuple(expected.shape))
        if close(got, expected):
            continue
        b, c, h, w = shape
        if close(got, images.reshape(b, -1, c * p * p)):
            raise Failed(f"Not yet: {who} has the right shape, but a plain reshape cuts the "
                         "image into strips of consecutive pixels, not squares. Reshape to "
                         "(B, C, H/p, p, W/p, p), permute to (B, H/p, W/p, C, p, p), then "
                         "flatten.")
        grid = images.reshape(b, c, h // p, p, w // p, p)
        if close(got, grid.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, c * p * p)):
            raise Failed(f"Not yet: in {who} each patch vector should hold channel 0's p x p "
                         "pixels first, then channel 1's (the layout of F.unfold): put C before "
                         "the two p axes, permute(0, 2, 4, 1, 3, 5).")
        if close(got, grid.permute(0, 4, 2, 1, 3, 5).reshape(b, -1, c * p * p)):
            raise Failed(f"Not yet: in {who} the patches come column by column; number them row "
                         "by row from the top-left (the row axis H/p before the column axis).")
        raise Failed(f"Not yet: {who} has the right shape but different values than "
                     "course_lib.vision.patchify. Patch n = row * (W/p) + column, each flattened "
                     "as (C, p, p).")
    return verdict(True, "Well done! Your patchify matches the course's on RGB, grey and "
                         "non-square images.")


def reference_log_mel(waveform: Tensor, filterbank: Tensor, n_fft: int,
                      hop_length: int) -> Tensor:
    """log(max(filterbank^T |STFT|^2, 1e-10)), Hann window, centre padding by reflection.

    Shape: waveform (L,), filterbank (n_fft // 2 + 1, n_mels) -> (n_mels, 1 + L // hop_length).
    """
    n_fft = check_int("n_fft", n_fft, minimum=2, maximum=2**16)
    hop_length = check_int("hop_length", hop_length, minimum=1, maximum=n_fft)
    waveform = check_tensor("waveform", waveform, shape=("L",), finite=True)
    if len(waveform) <= n_fft // 2:
        raise ValueError(f"waveform must be longer than n_fft // 2 = {n_fft // 2} samples (the "
                         f"reflection padding), got {len(waveform)}")
    filterbank = check_tensor("filterbank", filterbank, shape=(n_fft // 2 + 1, "n_mels"),
                              finite=True)
    check_allocation("waveform", (1 + len(waveform) // hop_length) * (n_fft // 2 + 1))
    spectrum = torch.stft(waveform, n_fft=n_fft, hop_length=hop_length,
                          window=torch.hann_window(n_fft), center=True, pad_mode="reflect",
                          return_complex=True)
    return torch.log((filterbank.T @ spectrum.abs() ** 2).clamp(min=LOG_FLOOR))


@guarded
def check_log_mel_from_filterbank(log_mel_from_filterbank: Callable) -> CheckResult:
    """Check ``log_mel_from_filterbank(waveform, filterbank, n_fft, hop_length)``.

    Tried on 0.3 s of a 440 Hz tone followed by silence (so the floor matters), with n_fft
    400, hop 160, 40 mel bands: the result must be (40, 1 + L // 160).
    """
    sample_rate, n_fft, hop = 16_000, 400, 160
    time = torch.arange(4_801) / sample_rate           # an odd length: 4801 samples
    waveform = torch.where(time < 0.2, 0.5 * torch.sin(2 * math.pi * 440 * time),
                           torch.zeros_like(time))
    filterbank = mel_filterbank(n_freqs=n_fft // 2 + 1, n_mels=40, sample_rate=sample_rate)
    who = "log_mel_from_filterbank(waveform of 4801 samples, filterbank (201, 40), 400, 160)"
    got = call_learner(log_mel_from_filterbank, waveform.clone(), filterbank.clone(), n_fft, hop,
                       exercise="check_log_mel_from_filterbank", name=who)
    if isinstance(got, Tensor):
        learner_tensor(got, who, "")  # a tensor with values, before they are inspected
    expected = reference_log_mel(waveform, filterbank, n_fft, hop)
    frames = expected.shape[1]
    if isinstance(got, Tensor) and got.shape == (40, 1 + (len(waveform) - n_fft) // hop):
        raise Failed(f"Not yet: {who} gives {got.shape[1]} frames, expected {frames} = 1 + L // "
                     "hop. Your frames have no centre padding: pass center=True (with "
                     "pad_mode='reflect') to torch.stft.")
    if isinstance(got, Tensor) and got.shape == (frames, 40):
        raise Failed(f"Not yet: {who} has shape {tuple(got.shape)}: mel bands should come first, "
                     f"(n_mels, frames) = {(40, frames)}. Compute filterbank.T @ power.")
    if isinstance(got, Tensor) and torch.isinf(got).any():
        raise Failed(f"Not yet: {who} contains -inf: the silent frames have zero power and "
                     "log(0) = -inf. Clamp the mel power to at least 1e-10 before the log.")
    got = _tensor(got, who, tuple(expected.shape))
    if close(got, expected, atol=1e-3, rtol=1e-4):
        return verdict(True, "Well done! Your log-mel matches the course's, frame for frame, "
                             "including the floor on the silent frames.")
    spectrum = torch.stft(waveform, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                          center=True, pad_mode="reflect", return_complex=True)
    of_magnitude = torch.log((filterbank.T @ spectrum.abs()).clamp(min=LOG_FLOOR))
    sound = expected > math.log(LOG_FLOOR) + 1
    if (close(got, of_magnitude, atol=1e-3, rtol=1e-4)
            or close(got[sound], 0.5 * expected[sound], atol=1e-3, rtol=1e-3)):
        raise Failed(f"Not yet: {who} looks like the log of the magnitude, half the log of the "
                     "power. Square the magnitude: power = spectrum.abs() ** 2.")
    if close(got[sound], expected[sound] / math.log(10), atol=1e-3, rtol=1e-3):
        raise Failed(f"Not yet: {who} uses log10; the course uses the natural log, torch.log.")
    rectangular = torch.stft(waveform, n_fft=n_fft, hop_length=hop, window=torch.ones(n_fft),
                             center=True,
                             pad_mode="reflect", return_complex=True)
    no_window = torch.log((filterbank.T @ rectangular.abs() ** 2).clamp(min=LOG_FLOOR))
    if close(got, no_window, atol=1e-3, rtol=1e-4):
        raise Failed(f"Not yet: {who} matches a spectrogram without a window. Pass "
                     "window=torch.hann_window(n_fft) to torch.stft.")
    raise Failed(f"Not yet: {who} differs from the course's log-mel (largest difference "
                 f"{(got - expected).abs().max():.3g}). Steps: torch.stft (Hann window, "
                 "center=True), power = |X|^2, filterbank.T @ power, log of the clamped power.")
