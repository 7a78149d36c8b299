"""course_lib.audio.LogMelFrontEnd, the chapters' one audio front-end: crop or pad each clip,
then the log-mel spectrogram.

The reference is torchaudio's MelSpectrogram (where it loads) on clips cut and padded by hand;
frame counts come from the hand formula 1 + samples // hop.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch

from course_lib.audio import LogMelFrontEnd
from course_lib.env import load_torchaudio

torchaudio, TORCHAUDIO_STATUS = load_torchaudio()
needs_torchaudio = pytest.mark.skipif(torchaudio is None, reason=TORCHAUDIO_STATUS)


def _speech_like(batch: int, samples: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(samples) / 16000
    tone = 0.4 * torch.sin(2 * math.pi * (200 + 900 * t) * t)
    return tone + 0.05 * torch.randn(batch, samples, generator=generator, dtype=torch.float64
                                     ).float()


def _torchaudio_log_mel(waveforms, sample_rate, n_fft, hop_length, n_mels):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torchaudio's filters in float64, as ours are built
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transform = torchaudio.transforms.MelSpectrogram(
                sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=True)
    finally:
        torch.set_default_dtype(previous)
    return torch.log(transform(waveforms.double()).clamp(min=1e-10))


@needs_torchaudio
@pytest.mark.parametrize("settings, samples", [
    ((16000, 400, 160, 40, 0.7), 16000),    # chapter 04: cut 1 s to 0.7 s
    ((16000, 400, 160, 32, 1.0), 16000),    # chapter 05: 1 s as it is
    ((16000, 400, 160, 64, 1.0), 12000),    # chapter 06 setting, a short clip padded
    ((4000, 256, 64, 32, 2.0), 9000),       # chapter 08's 4 kHz recordings, cut
])
def test_front_end_equals_torchaudio_on_clips_cut_or_padded_by_hand(settings, samples):
    sample_rate, n_fft, hop_length, n_mels, seconds = settings
    front_end = LogMelFrontEnd(sample_rate, n_fft, hop_length, n_mels, seconds)
    waveforms = _speech_like(3, samples).double()
    clip = round(seconds * sample_rate)
    by_hand = waveforms[:, :clip] if samples >= clip else torch.cat(
        [waveforms, torch.zeros(3, clip - samples, dtype=waveforms.dtype)], dim=1)
    expected = _torchaudio_log_mel(by_hand, sample_rate, n_fft, hop_length, n_mels)
    got = front_end(waveforms)
    assert got.shape == (3, n_mels, 1 + clip // hop_length) == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)


def test_frames_follow_the_hand_formula():
    assert LogMelFrontEnd(n_mels=40, clip_seconds=0.7).frames() == 1 + 11_200 // 160 == 71
    assert LogMelFrontEnd(clip_seconds=1.0).frames(123) == 101  # every input becomes 1 s
    assert LogMelFrontEnd().frames(48_000) == 1 + 48_000 // 160 == 301
    for samples in (201, 999, 16_000, 20_001):
        assert LogMelFrontEnd(n_mels=8)(torch.zeros(samples)).shape == (8, 1 + samples // 160)
    with pytest.raises(ValueError, match="num_samples is needed"):
        LogMelFrontEnd().frames()


def test_keeping_the_length_equals_the_plain_log_mel():
    from course_lib.audio import log_mel_spectrogram

    waveforms = _speech_like(2, 16000)
    torch.testing.assert_close(LogMelFrontEnd(n_mels=32)(waveforms),
                               log_mel_spectrogram(waveforms, n_mels=32), rtol=0, atol=0)


@pytest.mark.parametrize("settings, line", [
    ({"n_mels": 40, "clip_seconds": 0.7},
     "16 kHz, 25 ms window, 10 ms hop, 40 mel bins, 0.7 s clips"),
    ({"n_mels": 32, "clip_seconds": 1.0},
     "16 kHz, 25 ms window, 10 ms hop, 32 mel bins, 1 s clips"),
    ({}, "16 kHz, 25 ms window, 10 ms hop, 128 mel bins, clips of any length"),
    ({"sample_rate": 4000, "n_fft": 256, "hop_length": 64, "n_mels": 32, "clip_seconds": 2.5},
     "4 kHz, 64 ms window, 16 ms hop, 32 mel bins, 2.5 s clips"),
])
def test_describe_states_the_settings_in_one_line(settings, line):
    assert LogMelFrontEnd(**settings).describe() == line


def test_front_end_keeps_no_state_that_a_call_can_change():
    front_end = LogMelFrontEnd(n_mels=40, clip_seconds=0.7)
    waveforms = _speech_like(2, 16000)
    first = front_end(waveforms)
    front_end(waveforms.double()).zero_()        # another dtype, its result then mutated
    front_end(waveforms.to("meta"))              # another device
    again = front_end(waveforms)
    assert again.dtype == torch.float32
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        front_end.n_mels = 64  # settings are fixed once built
    assert dataclasses.asdict(front_end) == {"sample_rate": 16000, "n_fft": 400,
                                             "hop_length": 160, "n_mels": 40,
                                             "clip_seconds": 0.7}


def test_front_end_keeps_the_waveform_dtype_and_leading_dimensions():
    front_end = LogMelFrontEnd(n_mels=16, clip_seconds=0.5)
    waveforms = _speech_like(6, 9000).reshape(2, 3, 9000)
    assert front_end(waveforms).shape == (2, 3, 16, 51)
    assert front_end(waveforms.double()).dtype == torch.float64


@pytest.mark.parametrize("kwargs, argument", [
    ({"sample_rate": 0}, "sample_rate"), ({"n_fft": 1}, "n_fft"),
    ({"hop_length": 0}, "hop_length"), ({"n_mels": 0}, "n_mels"), ({"n_mels": 40.0}, "n_mels"),
    ({"clip_seconds": 0.0}, "clip_seconds"),
    ({"clip_seconds": 0.01}, "clip_seconds"), ({"clip_seconds": float("nan")}, "clip_seconds"),
])
def test_bad_settings_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        LogMelFrontEnd(**kwargs)


def test_bad_waveforms_name_the_argument():
    front_end = LogMelFrontEnd(n_mels=8)
    with pytest.raises(ValueError, match="waveforms"):
        front_end(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(ValueError, match="waveforms"):
        front_end([0.0] * 1000)
    with pytest.raises(ValueError, match="waveforms have 150 samples"):
        front_end(torch.zeros(150))
