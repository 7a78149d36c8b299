"""The interaction dataset: balanced, deterministic, and each modality alone uninformative."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.data import load_digits_av
from course_lib.data.interaction import load_digit_match, sample_match_pairs

POOL = np.repeat(np.arange(10), 7)  # 70 examples, 7 of each digit


def test_exactly_half_of_the_pairs_match_and_labels_say_whether_digits_agree():
    pairs = sample_match_pairs(POOL, POOL[::-1].copy(), 1000, seed=0)
    assert len(pairs) == 1000 and int(pairs.labels.sum()) == 500
    assert torch.equal(pairs.labels, (pairs.image_digits == pairs.audio_digits).long())
    assert torch.equal(torch.as_tensor(POOL)[pairs.image_index], pairs.image_digits)
    assert torch.equal(torch.as_tensor(POOL[::-1].copy())[pairs.audio_index], pairs.audio_digits)


def test_the_same_seed_gives_the_same_pairs_and_another_seed_different_ones():
    first, again = (sample_match_pairs(POOL, POOL, 200, seed=3) for _ in range(2))
    other = sample_match_pairs(POOL, POOL, 200, seed=4)
    for name in ("image_index", "audio_index", "labels"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.image_index, other.image_index)


def test_neither_modality_alone_says_anything_about_the_label():
    pairs = sample_match_pairs(POOL, POOL, 40_000, seed=1)
    for digits in (pairs.image_digits, pairs.audio_digits):
        for digit in range(10):
            chosen = digits == digit
            assert chosen.float().mean().item() == pytest.approx(0.1, abs=0.01)
            assert pairs.labels[chosen].float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_mismatching_partners_cover_every_other_digit_evenly():
    pairs = sample_match_pairs(POOL, POOL, 40_000, seed=2)
    mismatched = pairs.labels == 0
    offsets = (pairs.audio_digits - pairs.image_digits)[mismatched] % 10
    counts = torch.bincount(offsets, minlength=10)
    assert counts[0] == 0
    assert (counts[1:].float() / mismatched.sum()).sub(1 / 9).abs().max() < 0.01


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_pairs": 7}, "num_pairs must be a positive even int"),
        ({"num_pairs": 0}, "num_pairs must be a positive even int"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"num_classes": 1}, "num_classes must be an int >= 2"),
        ({"image_digits": np.arange(9)}, r"image_digits must contain every class.*missing \[9\]"),
        ({"audio_digits": POOL.reshape(7, 10)}, "audio_digits must be a 1-D integer array"),
        ({"audio_digits": POOL.astype(float)}, "audio_digits must be a 1-D integer array"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, message):
    arguments = {"image_digits": POOL, "audio_digits": POOL, "num_pairs": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        sample_match_pairs(**arguments)


def test_load_digit_match_pairs_real_images_with_real_clips_of_the_split():
    match = load_digit_match("test", num_pairs=200, seed=5)
    source = load_digits_av("test", seed=5)
    pairs = match.pairs
    assert match.images.shape == (200, 1, 8, 8) and match.waveforms.shape == (200, 16000)
    assert match.sample_rate == 16000 and len(match) == 200
    assert torch.equal(match.images, source.images[pairs.image_index])
    assert torch.equal(match.waveforms, source.waveforms[pairs.audio_index])
    assert torch.equal(source.labels[pairs.image_index], pairs.image_digits)
    assert torch.equal(source.labels[pairs.audio_index], pairs.audio_digits)
    assert torch.equal(match.labels, (pairs.image_digits == pairs.audio_digits).long())
    again = load_digit_match("test", num_pairs=200, seed=5)
    assert torch.equal(again.waveforms, match.waveforms)


def test_load_digit_match_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digit_match("valid", num_pairs=10)
    with pytest.raises(ValueError, match="num_pairs must be a positive even int"):
        load_digit_match("test", num_pairs=3)


def test_gather_picks_each_pairs_rows_from_the_pools_features():
    pairs = sample_match_pairs(POOL, POOL, 50, seed=0)
    image_features = torch.arange(70.0)[:, None] * torch.ones(70, 3)
    audio_features = -torch.arange(70.0)[:, None, None] * torch.ones(70, 5, 2)
    gathered = pairs.gather(image_features, audio_features)
    assert gathered["image"].shape == (50, 3) and gathered["audio"].shape == (50, 5, 2)
    assert torch.equal(gathered["image"][:, 0], pairs.image_index.float())
    assert torch.equal(gathered["audio"][:, 0, 0], -pairs.audio_index.float())
    with pytest.raises(ValueError, match="image_features has 10 rows"):
        pairs.gather(image_features[:10], audio_features)
