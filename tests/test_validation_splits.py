"""Validation splits: carved from the training data, disjoint from train's rest and from test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.data import load_clinic, load_digits_av
from course_lib.data.clinic import validation_rows
from course_lib.data.digits_av import (
    SPLITS,
    TEST_ACCENTS,
    load_spoken_digits,
    split_clip_indices,
    split_image_indices,
)

SEEDS = (0, 1, 2, 3, 4)


def test_digit_image_splits_partition_the_data():
    rows = {split: set(split_image_indices(split).tolist()) for split in SPLITS}
    assert not rows["fit"] & rows["validation"]
    assert not (rows["fit"] | rows["validation"]) & rows["test"]
    assert rows["fit"] | rows["validation"] == rows["train"]
    assert len(rows["validation"]) == 269 and len(rows["fit"]) == 1078


def test_digit_validation_images_are_stratified():
    from course_lib.data.digits_av import load_digit_images

    _, labels = load_digit_images()
    train = np.bincount(labels[split_image_indices("train")], minlength=10)
    validation = np.bincount(labels[split_image_indices("validation")], minlength=10)
    assert np.all(np.abs(validation - 0.2 * train) <= 0.5 + 1e-9)


def test_digit_recordings_are_disjoint_and_validation_uses_training_voices_only():
    bank = load_spoken_digits()
    clips = {split: set(split_clip_indices(split).tolist()) for split in SPLITS}
    assert not clips["fit"] & clips["validation"]
    assert not (clips["fit"] | clips["validation"]) & clips["test"]
    assert clips["fit"] | clips["validation"] == clips["train"]
    validation = np.array(sorted(clips["validation"]))
    assert not np.isin(bank["accents"][validation], TEST_ACCENTS).any()
    # one recording per training voice and digit: 12 voices x 10 digits
    pairs = {(bank["voices"][c], bank["labels"][c]) for c in validation}
    assert len(validation) == len(pairs) == 120
    assert {bank["voices"][c] for c in validation} == {bank["voices"][c] for c in clips["fit"]}


@pytest.mark.parametrize("seed", SEEDS)
def test_digit_splits_are_disjoint_and_deterministic_for_every_seed(seed):
    loaded = {split: load_digits_av(split, seed=seed) for split in ("fit", "validation", "test")}
    images = {split: set(data.image_indices.tolist()) for split, data in loaded.items()}
    clips = {split: set(data.clip_indices.tolist()) for split, data in loaded.items()}
    for first, second in (("fit", "validation"), ("fit", "test"), ("validation", "test")):
        assert not images[first] & images[second], (first, second)
        assert not clips[first] & clips[second], (first, second)
    assert not set(loaded["validation"].voices) & set(loaded["test"].voices)
    again = load_digits_av("validation", seed=seed)
    assert torch.equal(again.images, loaded["validation"].images)
    assert torch.equal(again.waveforms, loaded["validation"].waveforms)
    assert torch.equal(again.clip_indices, loaded["validation"].clip_indices)
    # each image is paired with a recording of its own digit
    bank = load_spoken_digits()
    for data in loaded.values():
        assert np.array_equal(bank["labels"][data.clip_indices.numpy()], data.labels.numpy())


def test_digit_loader_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits_av("valid")


@pytest.mark.parametrize("seed", SEEDS)
def test_clinic_validation_is_carved_from_train_and_disjoint_for_every_seed(seed):
    train = load_clinic("train", n_patients=300, seed=seed)
    fit = load_clinic("fit", n_patients=300, seed=seed)
    validation = load_clinic("validation", n_patients=300, seed=seed)
    test = load_clinic("test", n_patients=150, seed=seed)
    held = validation_rows(300, seed)
    rest = np.setdiff1d(np.arange(300), held)
    assert len(held) == 60 and len(fit) == 240 and len(validation) == 60
    assert fit.split == "fit" and validation.split == "validation"
    # the carved splits are exactly the training patients at those rows
    assert torch.equal(validation.images, train.images[torch.from_numpy(held)])
    assert torch.equal(fit.waveforms, train.waveforms[torch.from_numpy(rest)])
    assert validation.reports == [train.reports[i] for i in held]
    # no patient (film) appears in two of fit, validation, test
    films = {name: {row.numpy().tobytes() for row in data.images}
             for name, data in (("fit", fit), ("validation", validation), ("test", test))}
    assert not films["fit"] & films["validation"]
    assert not (films["fit"] | films["validation"]) & films["test"]
    again = load_clinic("validation", n_patients=300, seed=seed)
    assert torch.equal(again.images, validation.images) and again.reports == validation.reports


def test_clinic_default_validation_is_a_fifth_of_the_training_patients():
    assert len(validation_rows(2400)) == 480
    assert len(set(validation_rows(2400, 0)) ^ set(validation_rows(2400, 1))) > 0


def test_clinic_loaders_return_independent_copies():
    first = load_clinic("train", n_patients=50, seed=9)
    first.images.zero_()
    second = load_clinic("train", n_patients=50, seed=9)
    assert second.images.abs().sum() > 0


def test_clinic_validation_rows_reject_bad_input():
    with pytest.raises(ValueError, match="n_train"):
        validation_rows(1)
    with pytest.raises(ValueError, match="split must be one of"):
        load_clinic("dev")
