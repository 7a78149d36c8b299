"""Chapter 01's checkers: the right verdict for every kind of answer, and never an exception."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks.ch01 import check_peak_normalise, check_to_channels_first


def layout_correct(image):
    return image.permute(2, 0, 1).float() / 255


def layout_stub(image):
    raise NotImplementedError


def layout_crash(image):
    return image / "255"


def layout_wrong_shape(image):
    return image.float() / 255


def layout_nan(image):
    return layout_correct(image) * float("nan")


def layout_numpy(image):
    return layout_correct(image).numpy()


def layout_reshape(image):
    h, w, c = image.shape
    return image.reshape(c, h, w).float() / 255


def layout_no_scaling(image):
    return image.permute(2, 0, 1).float()


def layout_integer(image):
    return image.permute(2, 0, 1) // 255


def layout_swapped(image):
    return image.permute(2, 1, 0).float() / 255


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (layout_correct, True, "Well done!"),
    (layout_stub, False, "Not implemented yet"),
    (layout_crash, False, "raised TypeError"),
    (layout_wrong_shape, False, "expected (3, 4, 6)"),
    (layout_nan, False, "NaN"),
    (layout_numpy, False, "numpy.ndarray"),
    (layout_reshape, False, "permute(2, 0, 1)"),
    (layout_no_scaling, False, "divide by 255"),
    (layout_integer, False, "dtype torch.uint8"),
    (layout_swapped, False, "swaps height and width"),
])
def test_to_channels_first_checker_verdicts(answer, passed, words):
    result = check_to_channels_first(answer)
    assert result.passed is passed
    assert words in result.message


def peak_correct(waveforms):
    peaks = waveforms.abs().amax(dim=1, keepdim=True)
    return torch.where(peaks > 0, waveforms / peaks.clamp(min=1e-12), waveforms)


def peak_stub(waveforms):
    raise NotImplementedError


def peak_crash(waveforms):
    return waveforms / waveforms.abs().max(dim=2)


def peak_wrong_shape(waveforms):
    return peak_correct(waveforms).flatten()


def peak_nan_everywhere(waveforms):
    return peak_correct(waveforms) + float("nan")


def peak_numpy(waveforms):
    return peak_correct(waveforms).numpy()


def peak_zero_division(waveforms):
    return waveforms / waveforms.abs().amax(dim=1, keepdim=True)


def peak_global(waveforms):
    return waveforms / waveforms.abs().max()


def peak_signed_max(waveforms):
    peaks = waveforms.amax(dim=1, keepdim=True)
    return torch.where(peaks > 0, waveforms / peaks.clamp(min=1e-12), waveforms)


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (peak_correct, True, "Well done!"),
    (peak_stub, False, "Not implemented yet"),
    (peak_crash, False, "raised IndexError"),
    (peak_wrong_shape, False, "expected (3, 6)"),
    (peak_nan_everywhere, False, "NaN"),
    (peak_numpy, False, "numpy.ndarray"),
    (peak_zero_division, False, "silent clip"),
    (peak_global, False, "whole batch"),
    (peak_signed_max, False, "absolute"),
])
def test_peak_normalise_checker_verdicts(answer, passed, words):
    result = check_peak_normalise(answer)
    assert result.passed is passed
    assert words in result.message
