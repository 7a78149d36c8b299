"""Checkers for chapter 01's exercises: an image to PyTorch's layout, and peak normalisation.

References: ``image.permute(2, 0, 1).float() / 255`` for an 8-bit (H, W, C) image, and
:func:`reference_peak_normalise` for waveforms (each clip divided by its own largest
absolute sample; a silent clip stays silent).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from course_lib._validation import check_tensor
from course_lib.checks._common import (
    CheckResult,
    Failed,
    call_learner,
    close,
    guarded,
    learner_result,
    learner_tensor,
    verdict,
)

_ADVICE = "Use torch operations (permute, float, abs, amax) so that the result is a tensor."


def _tensor(value: object, who: str, shape: tuple[int, ...]) -> Tensor:
    """The learner's result as a tensor of ``shape``, or a precise :class:`Failed`."""
    return learner_result(value, who, shape, _ADVICE, floating=False,
                          reject="any NaN", detach=True)


def reference_to_channels_first(image: Tensor) -> Tensor:
    """(H, W, C) uint8 in 0..255 -> (C, H, W) float32 in [0, 1]."""
    image = check_tensor("image", image, ndim=3, kind="int")
    return image.permute(2, 0, 1).float() / 255.0


@guarded
def check_to_channels_first(to_channels_first: Callable) -> CheckResult:
    """Check ``to_channels_first(image)``: (H, W, C) uint8 -> (C, H, W) float32 in [0, 1].

    Tried on a 4 x 6 RGB image (not square, so swapped axes show) and a 5 x 5 grey one.
    """
    generator = torch.Generator().manual_seed(1)
    for shape in ((4, 6, 3), (5, 5, 1)):
        image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        image[0, 0] = 255  # make sure the largest value is there
        who = f"to_channels_first(a uint8 image of shape {shape})"
        got = call_learner(to_channels_first, image.clone(), exercise="check_to_channels_first",
                           name=who)
        expected = reference_to_channels_first(image)
        height, width, channels = shape
        swapped = (channels, width, height)
        if isinstance(got, Tensor) and height != width and tuple(got.shape) == swapped:
            raise Failed(f"Not yet: {who} has shape {tuple(got.shape)}: it swaps height and "
                         "width. Use permute(2, 0, 1), which keeps height before width.")
        got = _tensor(got, who, tuple(expected.shape))
        if not got.is_floating_point():
            raise Failed(f"Not yet: {who} has dtype {got.dtype}. Convert to float (.float()) "
                         "before dividing, or the values are rounded to whole numbers.")
        if close(got, expected):
            continue
        if close(got, expected * 255):
            raise Failed(f"Not yet: {who} has values up to {got.max().item():.0f}: divide by "
                         "255 so that brightness lies in [0, 1].")
        plain = image.reshape(channels, height, width).float() / 255
        if close(got, plain):
            raise Failed(f"Not yet: {who} has the right shape, but reshape only re-reads the "
                         "numbers in memory order and mixes the colours. Move the channel axis "
                         "with permute(2, 0, 1).")
        if close(got, image.permute(2, 1, 0).float() / 255):
            raise Failed(f"Not yet: {who} swaps height and width: use permute(2, 0, 1), which "
                         "keeps height before width.")
        raise Failed(f"Not yet: {who} differs from image.permute(2, 0, 1) / 255 (largest "
                     f"difference {(got - expected).abs().max():.3g}).")
    return verdict(True, "Well done! (H, W, C) bytes became PyTorch's (C, H, W) floats in [0, 1].")


def reference_peak_normalise(waveforms: Tensor) -> Tensor:
    """(N, S) -> (N, S): each clip divided by its largest |sample|; silent clips stay 0."""
    waveforms = check_tensor("waveforms", waveforms, ndim=2, finite=True)
    peaks = waveforms.abs().amax(dim=1, keepdim=True)
    return torch.where(peaks > 0, waveforms / peaks.clamp(min=1e-12), waveforms)


@guarded
def check_peak_normalise(peak_normalise: Callable) -> CheckResult:
    """Check ``peak_normalise(waveforms)``: (N, S) -> each clip's peak |sample| becomes 1.

    Tried on three clips: one whose peak is negative (-1.8, as noisy audio can be), a quiet one
    (peak 0.2) and a silent one (all zeros, which must stay zeros, not NaN).
    """
    waveforms = torch.tensor([[0.3, -1.8, 0.9, 0.1, -0.4, 1.2],
                              [0.05, -0.1, 0.2, 0.0, -0.15, 0.1],
                              [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    who = "peak_normalise(3 clips of 6 samples)"
    got = call_learner(peak_normalise, waveforms.clone(), exercise="check_peak_normalise",
                       name=who)
    if isinstance(got, Tensor):
        learner_tensor(got, who, "")  # a tensor with values, before they are inspected
    if isinstance(got, Tensor) and got.shape == waveforms.shape and torch.isnan(got[2]).any() \
            and not torch.isnan(got[:2]).any():
        raise Failed(f"Not yet: {who} turns the silent clip (all zeros) into NaN: 0 / 0. Leave "
                     "a clip whose peak is 0 unchanged (torch.where, or clamp the peak).")
    got = _tensor(got, who, tuple(waveforms.shape))
    expected = reference_peak_normalise(waveforms)
    if close(got, expected):
        return verdict(True, "Well done! Every clip now peaks at exactly 1 in absolute value, "
                             "and the silent one stays silent.")
    if close(got[:2], waveforms[:2] / 1.8):
        raise Failed(f"Not yet: {who} divides every clip by the loudest sample of the whole "
                     "batch; each clip needs its own peak (amax over dim=1, keepdim=True).")
    by_max = waveforms[:2] / waveforms[:2].amax(dim=1, keepdim=True)
    if close(got[:2], by_max):
        raise Failed(f"Not yet: {who} divides by the largest sample, but the peak of the first "
                     "clip is negative (-1.8): use the largest *absolute* value, .abs().amax().")
    raise Failed(f"Not yet: {who} differs from dividing each clip by its largest |sample| "
                 f"(largest difference {(got - expected).abs().max():.3g}).")
