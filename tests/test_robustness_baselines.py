"""Robustness of course_lib.baselines: bad arguments fail at once, with their name."""

from __future__ import annotations

import pytest
from test_robustness_support import assert_rejects, covers

from course_lib.baselines import LinearBaseline, baseline_features, linear_baseline
from course_lib.data import load_digits_av


@covers(linear_baseline)
@pytest.mark.parametrize("kwargs, argument", [
    ({"modality": "audio "}, "modality"),
    ({"modality": None}, "modality"),
    ({"modality": "image", "c_grid": []}, "c_grid"),
    ({"modality": "image", "c_grid": (0.0,)}, "c_grid"),
    ({"modality": "image", "c_grid": (float("inf"),)}, "c_grid"),
    ({"modality": "image", "c_grid": (True,)}, "c_grid"),
    ({"modality": "image", "c_grid": ("0.1",)}, "c_grid"),
    ({"modality": "image", "snr": -10.0}, "degradations"),
    ({"modality": "image", "snr_db": float("nan")}, "snr_db"),
])
def test_linear_baseline_rejects_bad_arguments_before_fitting(kwargs, argument):
    assert_rejects(linear_baseline, argument, **kwargs)


@covers(baseline_features)
def test_baseline_features_rejects_bad_modalities_and_floors():
    data = load_digits_av("validation", seed=0)
    assert_rejects(baseline_features, "modality", data, "Audio")
    assert_rejects(baseline_features, "log_floor", data, "image", log_floor=-5.0)


@covers(LinearBaseline, LinearBaseline.test_estimate)
def test_an_estimate_rejects_a_bad_confidence():
    import torch

    result = LinearBaseline("image", {}, 0, {}, 0.1, torch.tensor([True, False, True]))
    assert result.test_accuracy == pytest.approx(2 / 3)
    assert_rejects(result.test_estimate, "confidence", 1.5)
