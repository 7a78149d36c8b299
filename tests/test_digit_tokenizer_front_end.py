"""Chapter 05's DigitTokenizer reads its audio through the course's one front-end.

Reference: the log-mel computed by hand from torch.stft power and the mel filterbank, then
averaged over 0.2 s chunks with a plain mean (no course code for the tokens).
"""

from __future__ import annotations

import math

import torch

from course_lib.audio import LogMelFrontEnd, mel_filterbank
from course_lib.fusion_tools import DigitTokenizer, audio_frame_tokens


def _clips(count: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    words = torch.stack([0.3 * torch.sin(2 * math.pi * (300 + 100 * k) * t) for k in range(count)])
    return words + 0.01 * torch.randn(count, 16000, generator=generator)


def test_digit_tokenizer_states_its_front_end():
    images = torch.rand(4, 1, 8, 8)
    tokenizer = DigitTokenizer(images, _clips())
    assert tokenizer.front_end == LogMelFrontEnd(16000, 400, 160, 32, clip_seconds=1.0)
    assert tokenizer.front_end.describe() == (
        "16 kHz, 25 ms window, 10 ms hop, 32 mel bins, 1 s clips")


def test_audio_tokens_are_chunk_means_of_the_hand_made_log_mel():
    waveforms = _clips()
    window = torch.hann_window(400, dtype=torch.float64)
    spectrum = torch.stft(waveforms.double(), 400, 160, window=window, center=True,
                          pad_mode="reflect", return_complex=True)
    mel = mel_filterbank(201, 32, 16000, dtype=torch.float64).T @ spectrum.abs() ** 2
    log_mel = torch.log(mel.clamp(min=1e-10))                       # (4, 32, 101)
    # adaptive average pooling of 101 frames into 5: chunk k spans floor(101k/5)..ceil(101(k+1)/5)
    chunks = [log_mel[..., (101 * k) // 5: -(-101 * (k + 1) // 5)].mean(dim=-1) for k in range(5)]
    expected = torch.stack(chunks, dim=1)                            # (4, 5, 32)
    front_end = LogMelFrontEnd(n_mels=32, clip_seconds=1.0)
    got = audio_frame_tokens(waveforms.double(), num_tokens=5, front_end=front_end)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-9)
    tokenizer = DigitTokenizer(torch.rand(4, 1, 8, 8), waveforms)
    torch.testing.assert_close(tokenizer.audio_tokens(waveforms, standardize=False),
                               expected.float(), rtol=0, atol=2e-3)
