"""Tests of the aligned digits dataset (images + spoken words + captions) and the MRI slice."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.cbook import get_sample_data
from sklearn.datasets import load_digits

from course_lib.data import DIGIT_NAMES, load_digits_av, load_mri_slice
from course_lib.data.digits_av import SPOKEN_DIGITS_FILE, TEST_ACCENTS

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stored_clips() -> dict[str, np.ndarray]:
    """The asset read directly with numpy, decoded with the mu-law formula written out."""
    with np.load(SPOKEN_DIGITS_FILE) as stored:
        data = {key: stored[key] for key in stored.files}
    mu = 255.0
    y = data["codes"].astype(np.float64) / mu * 2.0 - 1.0  # codes 0..255 -> [-1, 1]
    data["decoded"] = np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu
    return data


@pytest.fixture(scope="module")
def builder():
    """tools/build_spoken_digits.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "build_spoken_digits", REPO_ROOT / "tools" / "build_spoken_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored_clip(stored: dict[str, np.ndarray], index: int) -> np.ndarray:
    start = stored["offsets"][index]
    return stored["decoded"][start:start + stored["lengths"][index]]


@pytest.mark.parametrize("split", ["train", "test"])
def test_split_has_documented_shapes_dtypes_and_ranges(split):
    ds = load_digits_av(split)
    n = len(ds)
    assert ds.images.shape == (n, 1, 8, 8) and ds.images.dtype == torch.float32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.waveforms.shape == (n, 16000) and ds.waveforms.dtype == torch.float32
    assert ds.waveforms.abs().max() <= 1.0
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert set(ds.labels.tolist()) == set(range(10))
    assert len(ds.captions) == len(ds.voices) == n
    assert ds.sample_rate == 16000
    image, waveform, caption, label = ds[3]
    assert image.shape == (1, 8, 8) and waveform.shape == (16000,)
    assert caption == ds.captions[3] and label == int(ds.labels[3])


def test_splits_partition_sklearn_digits_75_25_per_class():
    train, test = load_digits_av("train"), load_digits_av("test")
    assert len(train) + len(test) == 1797
    rows = torch.cat([train.image_indices, test.image_indices])
    assert sorted(rows.tolist()) == list(range(1797))
    for label in range(10):
        n_test = int((test.labels == label).sum())
        n_class = n_test + int((train.labels == label).sum())
        assert abs(n_test - 0.25 * n_class) <= 0.5


def test_images_are_sklearn_digits_scaled_to_unit_range():
    digits = load_digits()
    ds = load_digits_av("test")
    rows = ds.image_indices.numpy()
    expected = torch.from_numpy((digits.images[rows] / 16.0).astype(np.float32))[:, None]
    torch.testing.assert_close(ds.images, expected)
    assert ds.labels.tolist() == digits.target[rows].tolist()


def test_each_clip_says_the_digit_of_its_image(stored_clips):
    for split in ("train", "test"):
        ds = load_digits_av(split, seed=3)
        spoken_labels = stored_clips["labels"][ds.clip_indices.numpy()]
        assert spoken_labels.tolist() == ds.labels.tolist()
        assert ds.voices == stored_clips["voices"][ds.clip_indices.numpy()].tolist()


def test_clean_waveform_is_the_stored_clip_then_silence(stored_clips):
    ds = load_digits_av("train")
    for row in (0, 1, 500):
        clip = stored_clip(stored_clips, int(ds.clip_indices[row]))
        waveform = ds.waveforms[row].double().numpy()
        np.testing.assert_allclose(waveform[:clip.size], clip, atol=1e-6)
        assert not waveform[clip.size:].any()
        assert 0.2 * 16000 < clip.size < 16000


def test_captions_name_the_label_in_words_or_digits():
    ds = load_digits_av("train")
    for caption, label in zip(ds.captions, ds.labels.tolist(), strict=True):
        assert DIGIT_NAMES[label] in caption.split() or str(label) in caption
    assert len({caption.replace(DIGIT_NAMES[0], "") for caption in ds.captions}) >= 10


def test_test_voices_are_held_out_accents_never_heard_in_training():
    train, test = load_digits_av("train"), load_digits_av("test")
    assert not set(train.voices) & set(test.voices)
    test_accents = {voice.split("+")[0] for voice in test.voices}
    train_accents = {voice.split("+")[0] for voice in train.voices}
    assert test_accents == set(TEST_ACCENTS)
    assert not train_accents & test_accents and len(train_accents) >= 4


def test_same_seed_gives_identical_data():
    options = dict(seed=5, image_noise=0.2, snr_db=3.0, max_shift_s=0.2)
    first, second = load_digits_av("train", **options), load_digits_av("train", **options)
    for name in ("images", "waveforms", "labels", "clip_indices", "shifts"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    assert first.captions == second.captions and first.voices == second.voices


def test_another_seed_changes_the_pairing_but_not_the_images():
    first, second = load_digits_av("train", seed=0), load_digits_av("train", seed=1)
    assert torch.equal(first.image_indices, second.image_indices)
    assert (first.clip_indices != second.clip_indices).float().mean() > 0.5
    assert first.captions != second.captions


def test_degradations_leave_the_pairing_unchanged():
    clean = load_digits_av("test", seed=2)
    degraded = load_digits_av("test", seed=2, image_noise=0.3, snr_db=0.0, max_shift_s=0.1)
    assert torch.equal(clean.clip_indices, degraded.clip_indices)
    assert clean.captions == degraded.captions


@pytest.mark.parametrize("snr_db", [-10.0, -5.0, 0.0, 20.0])
def test_added_noise_has_the_requested_snr_over_each_clips_speech(snr_db, stored_clips):
    clean = load_digits_av("test", seed=1)
    noisy = load_digits_av("test", seed=1, snr_db=snr_db)
    noise = (noisy.waveforms - clean.waveforms).double().numpy()
    lengths = stored_clips["lengths"][clean.clip_indices.numpy()]
    for row in range(0, len(clean), 7):
        speech = clean.waveforms[row, :lengths[row]].double().numpy()
        measured = 10 * math.log10(np.mean(speech**2) / np.mean(noise[row] ** 2))
        assert measured == pytest.approx(snr_db, abs=0.1)
    # the noise is white: spread over the whole second, uncorrelated from sample to sample
    assert np.abs(noise[:, :8000]).mean() == pytest.approx(np.abs(noise[:, 8000:]).mean(), rel=0.1)
    lag_one = np.mean(noise[:, 1:] * noise[:, :-1]) / np.mean(noise**2)
    assert abs(lag_one) < 0.02


def test_shift_moves_each_word_right_by_its_shift_in_samples():
    clean = load_digits_av("train", seed=4)
    shifted = load_digits_av("train", seed=4, max_shift_s=0.25)
    shifts = shifted.shifts.numpy()
    assert shifts.min() >= 0 and shifts.max() <= 4000 and shifts.max() > 3500
    assert len(np.unique(shifts)) > 100
    for row in range(0, len(clean), 50):
        shift = int(shifts[row])
        assert not shifted.waveforms[row, :shift].any()
        assert torch.equal(shifted.waveforms[row, shift:], clean.waveforms[row, :16000 - shift])
        first_sound = int(torch.nonzero(clean.waveforms[row])[0])
        assert int(torch.nonzero(shifted.waveforms[row])[0]) == first_sound + shift
    assert not load_digits_av("train", seed=4).shifts.any()


def test_image_noise_is_gaussian_with_the_given_std_then_clipped():
    clean = load_digits_av("train", seed=6)
    noisy = load_digits_av("train", seed=6, image_noise=0.1)
    assert 0.0 <= noisy.images.min() and noisy.images.max() <= 1.0
    difference = noisy.images - clean.images
    mid_grey = (clean.images > 0.4) & (clean.images < 0.6)  # 4 std from the clipping bounds
    assert difference[mid_grey].std().item() == pytest.approx(0.1, rel=0.05)
    assert abs(difference[mid_grey].mean().item()) < 0.005
    assert torch.equal(load_digits_av("train", seed=6, image_noise=0.0).images, clean.images)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (dict(split="dev"), "split"),
        (dict(split="train", image_noise=-0.1), "image_noise"),
        (dict(split="train", image_noise=float("nan")), "image_noise"),
        (dict(split="train", snr_db=float("inf")), "snr_db"),
        (dict(split="train", snr_db=float("nan")), "snr_db"),
        (dict(split="train", snr_db="loud"), "snr_db"),
        (dict(split="train", max_shift_s=-0.1), "max_shift_s"),
        (dict(split="train", max_shift_s=1.0), "max_shift_s"),
        (dict(split="train", seed=-1), "seed"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(arguments, name):
    with pytest.raises(ValueError, match=name):
        load_digits_av(**arguments)


def test_mri_slice_is_the_raw_matplotlib_sample_scaled_to_unit_range():
    with get_sample_data("s1045.ima.gz") as stored:
        raw = np.frombuffer(stored.read(), dtype=">u2").astype(np.float64).reshape(256, 256)
    full = load_mri_slice(256)
    assert full.shape == (1, 256, 256) and full.dtype == torch.float32
    torch.testing.assert_close(full[0].double(), torch.from_numpy(raw / raw.max()))


@pytest.mark.parametrize("size", [224, 64, 300])
def test_resized_mri_slice_keeps_range_and_brightness(size):
    image = load_mri_slice(size)
    assert image.shape == (1, size, size) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert image.mean().item() == pytest.approx(load_mri_slice(256).mean().item(), abs=0.01)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, 5000])
def test_bad_mri_size_raises_value_error_naming_size(size):
    with pytest.raises(ValueError, match="size"):
        load_mri_slice(size)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_rebuilding_clips_with_espeak_reproduces_the_stored_ones(stored_clips, builder):
    specs = builder.clip_specs()
    assert len(specs) == len(stored_clips["lengths"])
    for index in (0, 7, len(specs) // 2 + 3, len(specs) - 1):
        codes = builder.build_clip(specs[index])
        start = stored_clips["offsets"][index]
        stored = stored_clips["codes"][start:start + stored_clips["lengths"][index]]
        assert specs[index]["voice"] == stored_clips["voices"][index]
        assert specs[index]["label"] == stored_clips["labels"][index]
        np.testing.assert_array_equal(codes, stored)


def test_clean_data_is_easy_and_degradations_make_linear_baselines_clearly_worse(builder):
    # the claims of assets/README.md, with margins around its table
    assert builder.baseline_accuracy("image") > 0.95
    assert builder.baseline_accuracy("image", image_noise=0.8) < 0.6
    assert builder.baseline_accuracy("audio") > 0.88
    assert builder.baseline_accuracy("audio", snr_db=-15.0) < 0.5
