"""The calculator's counts equal what the course's own encoders (chapter 02) really output."""

import random

import pytest
import torch

from course_lib.audio import AudioEncoder, log_mel_spectrogram
from course_lib.budget import audio_tokens, image_tokens, stft_num_frames
from course_lib.vision import ViTEncoder


@pytest.fixture(scope="module")
def encoders():
    torch.manual_seed(0)
    return {convs: AudioEncoder(n_mels=32, dim=16, depth=1, num_heads=2,
                                num_downsample_convs=convs).eval() for convs in (1, 2, 3, 4)}


def encoder_tokens(encoder, seconds, hop_length=160):
    waveform = 0.1 * torch.randn(round(seconds * 16000))
    mel = log_mel_spectrogram(waveform, n_mels=32, hop_length=hop_length)[None]  # (1, 32, T)
    with torch.no_grad():
        tokens = encoder(mel)  # (1, T', 16)
    return mel.shape[-1], tokens.shape[1]


def test_audio_tokens_equal_audio_encoder_output_length_for_many_durations(encoders):
    rng = random.Random(3)
    durations = [0.02, 0.5, 1.0, 3.0, 5.0, 10.0, 30.0] + [round(rng.uniform(0.1, 20), 3)
                                                          for _ in range(10)]
    for seconds in durations:
        frames, tokens = encoder_tokens(encoders[3], seconds)
        assert frames == stft_num_frames(round(seconds * 16000)), seconds
        assert tokens == audio_tokens(seconds), seconds


def test_audio_tokens_follow_the_encoder_for_other_hops_and_depths(encoders):
    for convs, encoder in encoders.items():
        for hop_length in (128, 256, 400):
            for seconds in (0.75, 3.0, 5.0):
                _, tokens = encoder_tokens(encoder, seconds, hop_length)
                assert tokens == audio_tokens(seconds, hop_length=hop_length,
                                              num_downsample_convs=convs)


def test_syllabus_numbers_come_out_of_the_encoder(encoders):
    assert encoder_tokens(encoders[3], 3.0) == (301, 38)
    assert encoder_tokens(encoders[3], 10.0) == (1001, 126)
    assert encoder_tokens(encoders[3], 3.0, hop_length=256) == (188, 24)


@pytest.mark.parametrize("image_size,patch_size", [(32, 16), (64, 8), (112, 14), (224, 16),
                                                   (224, 28), (336, 14)])
def test_image_tokens_equal_vit_encoder_output(image_size, patch_size):
    torch.manual_seed(0)
    images = torch.rand(1, 1, image_size, image_size)
    all_tokens = ViTEncoder(image_size, patch_size, 1, 16, 1, 2, pool="none").eval()
    cls_only = ViTEncoder(image_size, patch_size, 1, 16, 1, 2, pool="cls").eval()
    with torch.no_grad():
        every = all_tokens(images)  # (1, N + 1, 16), CLS first
        pooled = cls_only(images)  # (1, 16): one vector
    assert every.shape[1] == image_tokens(image_size, image_size, patch_size, "patches+cls")
    assert every[:, 1:].shape[1] == image_tokens(image_size, image_size, patch_size, "patches")
    assert pooled[:, None].shape[1] == image_tokens(image_size, image_size, patch_size, "cls")
