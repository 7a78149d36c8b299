"""The linear baselines of chapter 01: validation chooses C, test is scored once, intervals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_lib.audio import log_mel_spectrogram
from course_lib.baselines import LinearBaseline, baseline_features, linear_baseline
from course_lib.data import load_digits_av
from course_lib.evaluation import wilson_interval


@pytest.fixture(scope="module")
def clean_images() -> LinearBaseline:
    return linear_baseline("image", seed=0, c_grid=(0.01, 0.1, 1.0))


def test_image_baseline_follows_fit_validation_test_written_out_with_sklearn(clean_images):
    # The recipe written out independently: fit on "fit", choose on "validation" (ties to
    # the smallest C), refit on both, score on "test".
    splits = {name: load_digits_av(name, seed=0) for name in ("fit", "validation", "test")}
    x = {name: d.images.reshape(len(d), -1).numpy() for name, d in splits.items()}
    y = {name: d.labels.numpy() for name, d in splits.items()}

    def model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))

    scores = {c: model(c).fit(x["fit"], y["fit"]).score(x["validation"], y["validation"])
              for c in (0.01, 0.1, 1.0)}
    chosen = min(c for c in scores if scores[c] == max(scores.values()))
    final = model(chosen).fit(np.concatenate([x["fit"], x["validation"]]),
                              np.concatenate([y["fit"], y["validation"]]))
    assert clean_images.validation_accuracy == pytest.approx(scores)
    assert clean_images.chosen_c == chosen
    assert clean_images.test_accuracy == pytest.approx(final.score(x["test"], y["test"]))
    assert clean_images.test_correct.shape == (450,) and clean_images.test_correct.dtype == \
        torch.bool


def test_test_estimate_is_the_wilson_interval_of_the_test_flags(clean_images):
    estimate = clean_images.test_estimate()
    right = int(clean_images.test_correct.sum())
    assert estimate.mean == pytest.approx(right / 450)
    assert (estimate.low, estimate.high) == pytest.approx(wilson_interval(right, 450))
    assert estimate.low < clean_images.test_accuracy < estimate.high


def test_pixel_noise_makes_the_image_task_much_harder(clean_images):
    noisy = linear_baseline("image", seed=0, c_grid=(0.1,), image_noise=0.8)
    assert noisy.degradations == {"image_noise": 0.8}
    assert noisy.validation_accuracy == {}  # one C: nothing to choose, no validation fit
    assert noisy.test_estimate().high < clean_images.test_estimate().low
    assert clean_images.test_accuracy > 0.9


def test_a_tie_on_validation_goes_to_the_smallest_c():
    # Two values of C this close give the same predictions, so the same validation score.
    result = linear_baseline("image", seed=1, c_grid=(0.5000001, 0.5))
    first, second = result.validation_accuracy.values()
    assert first == second and result.chosen_c == 0.5


def test_audio_features_are_the_flattened_64_band_log_mel():
    data = load_digits_av("validation", seed=0)
    features = baseline_features(data, "audio")
    reference = log_mel_spectrogram(data.waveforms[:3], n_mels=64)  # (3, 64, 101)
    assert features.shape == (269, 64 * 101)
    np.testing.assert_allclose(features[:3], reference.reshape(3, -1).numpy(), rtol=1e-5,
                               atol=1e-4)
    floored = baseline_features(data, "audio", log_floor=-10.0)
    assert floored.min() == pytest.approx(-10.0)
    assert features.min() < -20  # exact digital silence sits at log(1e-10) = -23.03
    np.testing.assert_array_equal(floored, np.maximum(features, np.float32(-10.0)))


def test_image_features_are_the_64_pixels():
    data = load_digits_av("validation", seed=0)
    assert np.array_equal(baseline_features(data, "image"), data.images.reshape(269, 64).numpy())


@pytest.mark.parametrize("kwargs, argument", [
    ({"modality": "video"}, "modality"),
    ({"modality": "image", "c_grid": ()}, "c_grid"),
    ({"modality": "image", "c_grid": (0.1, -1.0)}, "c_grid"),
    ({"modality": "image", "c_grid": (float("nan"),)}, "c_grid"),
    ({"modality": "image", "noise": 0.3}, "degradations"),
])
def test_linear_baseline_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        linear_baseline(**kwargs)


def test_baseline_features_rejects_a_floor_for_images_and_unknown_modalities():
    data = load_digits_av("validation", seed=0)
    with pytest.raises(ValueError, match="log_floor"):
        baseline_features(data, "image", log_floor=-10.0)
    with pytest.raises(ValueError, match="modality"):
        baseline_features(data, "text")
