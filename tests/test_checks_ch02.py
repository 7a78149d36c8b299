"""Chapter 02's checkers: the right verdict for every kind of answer, and never an exception."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.audio import log_mel_spectrogram, mel_filterbank
from course_lib.checks.ch02 import (
    check_log_mel_from_filterbank,
    check_patchify,
    reference_log_mel,
)


def patchify_unfold(images, p):
    return F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)


def patchify_stub(images, p):
    raise NotImplementedError


def patchify_crash(images, p):
    return images.reshape(-1, p * p * 5)


def patchify_wrong_shape(images, p):
    return patchify_unfold(images, p).transpose(1, 2)


def patchify_nan(images, p):
    return patchify_unfold(images, p) / 0 * 0


def patchify_numpy(images, p):
    return patchify_unfold(images, p).numpy()


def patchify_plain_reshape(images, p):
    b, c, _, _ = images.shape
    return images.reshape(b, -1, c * p * p)


def patchify_channels_last(images, p):
    b, c, h, w = images.shape
    grid = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return grid.reshape(b, -1, c * p * p)


def patchify_column_major(images, p):
    b, c, h, w = images.shape
    grid = images.reshape(b, c, h // p, p, w // p, p).permute(0, 4, 2, 1, 3, 5)
    return grid.reshape(b, -1, c * p * p)


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (patchify_unfold, True, "Well done!"),
    (patchify_stub, False, "Not implemented yet"),
    (patchify_crash, False, "raised RuntimeError"),
    (patchify_wrong_shape, False, "expected (2, 6, 48)"),
    (patchify_nan, False, "NaN"),
    (patchify_numpy, False, "numpy.ndarray"),
    (patchify_plain_reshape, False, "strips"),
    (patchify_channels_last, False, "channel 0's"),
    (patchify_column_major, False, "column by column"),
])
def test_patchify_checker_verdicts(answer, passed, words):
    result = check_patchify(answer)
    assert result.passed is passed
    assert words in result.message


def _log_mel(waveform, filterbank, n_fft, hop, *, center=True, power=2, log=torch.log,
             floor=True, window=True):
    taper = torch.hann_window(n_fft) if window else torch.ones(n_fft)
    spectrum = torch.stft(waveform, n_fft=n_fft, hop_length=hop, window=taper, center=center,
                          pad_mode="reflect", return_complex=True)
    mel = filterbank.T @ spectrum.abs() ** power
    return log(mel.clamp(min=1e-10) if floor else mel)


def log_mel_correct(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop)


def log_mel_stub(waveform, filterbank, n_fft, hop):
    raise NotImplementedError


def log_mel_crash(waveform, filterbank, n_fft, hop):
    return filterbank @ waveform


def log_mel_transposed(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop).T


def log_mel_nan(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop) * float("nan")


def log_mel_numpy(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop).numpy()


def log_mel_no_centre(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop, center=False)


def log_mel_magnitude(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop, power=1)


def log_mel_log10(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop, log=torch.log10)


def log_mel_no_floor(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop, floor=False)


def log_mel_no_window(waveform, filterbank, n_fft, hop):
    return _log_mel(waveform, filterbank, n_fft, hop, window=False)


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (log_mel_correct, True, "Well done!"),
    (log_mel_stub, False, "Not implemented yet"),
    (log_mel_crash, False, "raised RuntimeError"),
    (log_mel_transposed, False, "mel bands should come first"),
    (log_mel_nan, False, "NaN"),
    (log_mel_numpy, False, "numpy.ndarray"),
    (log_mel_no_centre, False, "no centre padding"),
    (log_mel_magnitude, False, "magnitude"),
    (log_mel_log10, False, "log10"),
    (log_mel_no_floor, False, "-inf"),
    (log_mel_no_window, False, "hann_window"),
])
def test_log_mel_checker_verdicts(answer, passed, words):
    result = check_log_mel_from_filterbank(answer)
    assert result.passed is passed
    assert words in result.message


def test_reference_log_mel_equals_torchaudio_based_log_mel_spectrogram():
    waveform = 0.3 * torch.sin(2 * math.pi * 300 * torch.arange(8000) / 16000)
    filterbank = mel_filterbank(n_freqs=201, n_mels=64, sample_rate=16000)
    ours = reference_log_mel(waveform, filterbank, 400, 160)
    theirs = log_mel_spectrogram(waveform, 16000, 400, 160, 64)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-3)
