"""Intervals for one number: a mean over seeds (Student-t) and an accuracy (Wilson).

Part of :mod:`course_lib.evaluation` (import from there). :func:`student_t_quantile` needs no
scipy: the t distribution function for integer degrees of freedom has a closed form
(Abramowitz & Stegun 26.7.3-4), inverted by bisection. :func:`wilson_interval` is Wilson's
score interval (Wilson 1927, "Probable inference, the law of succession, and statistical
inference", JASA 22(158)).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from course_lib._validation import (
    MAX_LOOP,
    ArgumentTypeError,
    check_allocation,
    check_choice,
    check_int,
    check_number,
    check_sequence,
    check_tensor,
    describe,
)

__all__ = ["Estimate", "mean_interval", "student_t_quantile", "wilson_estimate",
           "wilson_interval"]

MAX_COUNT = 10**15  # examples or degrees of freedom: beyond it a float cannot hold the count
MAX_DIGITS = 12  # decimals in a printed estimate
EXACT_DF = 1_000  # degrees of freedom up to which the t quantile is found from the exact CDF


def _check_confidence(confidence: float) -> float:
    return check_number("confidence", confidence, above=0.0, below=1.0)


def _check_digits(digits: int) -> int:
    return check_int("digits", digits, minimum=0, maximum=MAX_DIGITS)


def _as_number(name: str, value: Any) -> float:
    """One real number: a Python or numpy scalar, or a tensor / array holding one value."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        value = torch.as_tensor(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ArgumentTypeError(f"{name} must be one number, got {describe(value)}")
        if value.dtype == torch.bool or value.is_complex():
            raise ArgumentTypeError(f"{name} must be a real number, got {describe(value)}")
        value = value.item()
    return check_number(name, value, finite=False)


def _t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, cos
        for k in range(1, (df - 1) // 2 + 1):
            if k > 1:
                term *= cos * cos * (2 * k - 2) / (2 * k - 1)
            total += term
        return (2.0 / math.pi) * (theta + sin * total) if df > 1 else 2.0 * theta / math.pi
    total, term = 1.0, 1.0
    for k in range(1, df // 2):
        term *= cos * cos * (2 * k - 1) / (2 * k)
        total += term
    return sin * total


def student_t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom.

    ``student_t_quantile(0.975, 4)`` is 2.776, the number printed in every t table. Computed
    by bisection on the closed-form distribution function, accurate to about 1e-10.

    Up to ``df`` = 1000 the distribution function is summed exactly (its series has df / 2
    terms); above, the Cornish-Fisher expansion in 1 / df of Abramowitz & Stegun 26.7.5
    (four terms, error of order df^-5, below 1e-12 there) replaces it, so any df is fast.

    Raises:
        ValueError / TypeError: naming ``probability`` unless it is a real number in (0, 1),
            naming ``df`` unless it is an integer from 1 to 10**15.
    """
    probability = check_number("probability", probability, above=0.0, below=1.0)
    df = check_int("df", df, minimum=1, maximum=MAX_COUNT)
    if probability == 0.5:
        return 0.0
    if df > EXACT_DF:
        return _cornish_fisher_t(probability, df)
    central = abs(2.0 * probability - 1.0)
    low, high = 0.0, 1.0
    while _t_central_probability(high, df) < central:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if _t_central_probability(middle, df) < central:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    quantile = 0.5 * (low + high)
    return quantile if probability > 0.5 else -quantile


def _cornish_fisher_t(probability: float, df: int) -> float:
    """Abramowitz & Stegun 26.7.5: t = x + g1/df + g2/df^2 + g3/df^3 + g4/df^4, x normal."""
    x = NormalDist().inv_cdf(probability)
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    inverse = 1.0 / df
    return x + inverse * (g1 + inverse * (g2 + inverse * (g3 + inverse * g4)))


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its interval.

    Attributes:
        mean: the point estimate (mean over seeds, or the observed proportion).
        low, high: the interval's ends.
        std: sample standard deviation over seeds (``ddof=1``), or the binomial standard error
            for a Wilson estimate.
        values: the raw per-seed values (empty for a Wilson estimate).
        n: number of seeds, or number of test examples for a Wilson estimate.
        confidence: the interval's coverage, e.g. 0.95.
        method: ``"t"`` (Student-t over seeds) or ``"wilson"``.
    """

    mean: float
    low: float
    high: float
    std: float
    values: tuple[float, ...]
    n: int
    confidence: float = 0.95
    method: str = "t"

    def __post_init__(self) -> None:
        for name in ("mean", "low", "high", "std"):
            value = check_number(name, getattr(self, name))
            object.__setattr__(self, name, value)
        if not self.low <= self.high:
            raise ValueError(f"low must not exceed high, got low {self.low:g} and high "
                             f"{self.high:g}")
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Sequence):
            raise ArgumentTypeError(f"values must be a tuple of numbers, got "
                                    f"{describe(self.values)}")
        object.__setattr__(self, "values", tuple(
            check_number(f"values[{i}]", v) for i, v in enumerate(self.values)))
        object.__setattr__(self, "n", check_int("n", self.n, minimum=1, maximum=MAX_COUNT))
        object.__setattr__(self, "confidence", _check_confidence(self.confidence))
        check_choice("method", self.method, ("t", "wilson"))

    @property
    def half_width(self) -> float:
        """Half the interval's width (for a t interval, the +- in "mean +- half_width")."""
        return 0.5 * (self.high - self.low)

    def format(self, digits: int = 3) -> str:
        """``"0.904 [0.892, 0.916]"``: the mean and the interval, rounded to ``digits``."""
        digits = _check_digits(digits)
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def __str__(self) -> str:
        return self.format()


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean of per-seed ``values`` (n,) with a Student-t interval: mean +- t * std / sqrt(n).

    ``values`` is a list or tuple of numbers (Python, numpy or one-element tensors), or a
    1-D tensor or numpy array.

    Raises:
        ValueError / TypeError: naming ``values`` if fewer than two are given (one seed says
            nothing about seed noise), one is not a finite number, or it is not a sequence;
            naming ``confidence`` unless it is in (0, 1).
    """
    confidence = _check_confidence(confidence)
    if isinstance(values, (torch.Tensor, np.ndarray)):
        values = check_tensor("values", values, ndim=1).tolist()
    values = check_sequence("values", values, of="numbers")
    check_allocation("values", len(values), MAX_LOOP, "iterations")
    numbers = tuple(_as_number(f"values[{i}]", v) for i, v in enumerate(values))
    if len(numbers) < 2:
        raise ValueError(
            f"values needs at least 2 entries (one per seed) to estimate seed noise, "
            f"got {len(numbers)}"
        )
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"values must all be finite, got {numbers[:10]}")
    n = len(numbers)
    mean = math.fsum(numbers) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in numbers) / (n - 1))
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, std, numbers, n, confidence, "t")


def wilson_interval(
    successes: int, trials: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a proportion: ``successes`` correct out of ``trials``.

    With p = successes / trials and z the normal quantile (1.96 at 95 %):
    centre = (p + z^2 / 2n) / (1 + z^2 / n),
    half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2).
    Unlike p +- z sqrt(p(1-p)/n) it never leaves [0, 1] and is sensible at p = 0 or 1.

    Raises:
        ValueError / TypeError: naming the argument if ``trials`` is not an integer from 1 to
            10**15, ``successes`` not an integer in [0, trials] (numpy integers are fine,
            tensors and floats are not), or ``confidence`` is not in (0, 1).
    """
    confidence = _check_confidence(confidence)
    successes = check_int("successes", successes)
    trials = check_int("trials", trials, minimum=1, maximum=MAX_COUNT)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials={trials}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def _as_correct(correct: torch.Tensor | Sequence[bool], name: str) -> torch.Tensor:
    if isinstance(correct, (list, tuple)):
        kinds = {type(v).__name__ for v in correct
                 if not isinstance(v, (numbers.Real, np.integer, np.floating, np.bool_))}
        if kinds:
            raise ArgumentTypeError(f"{name} must be right/wrong flags (True/False or 1/0), "
                                    f"got a list holding {sorted(kinds)}")
        correct = torch.tensor([float(v) for v in correct], dtype=torch.float64)
    elif not isinstance(correct, (torch.Tensor, np.ndarray)):
        raise ArgumentTypeError(f"{name} must be right/wrong flags (a list, numpy array or "
                                f"tensor of N booleans or 0/1), got {describe(correct)}")
    tensor = check_tensor(name, correct, kind=None).detach().cpu()
    if tensor.is_complex():
        raise ArgumentTypeError(f"{name} must be right/wrong flags, got dtype {tensor.dtype}")
    if tensor.ndim != 1 or tensor.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence of right/wrong flags (N,), "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.dtype != torch.bool:
        if not bool(((tensor == 0) | (tensor == 1)).all()):
            raise ValueError(f"{name} must hold only 0/1 or True/False, got other values")
        tensor = tensor.bool()
    return tensor


def wilson_estimate(
    successes: int | torch.Tensor | Sequence[bool],
    trials: int | None = None,
    confidence: float = 0.95,
) -> Estimate:
    """An :class:`Estimate` of one model's accuracy with the Wilson interval.

    Call it with counts, ``wilson_estimate(412, 450)``, or with the right/wrong flags of each
    test example, ``wilson_estimate(predictions == labels)`` ((N,) bool).

    Raises:
        ValueError / TypeError: as :func:`wilson_interval`; naming ``successes`` for flags
            that are not 1-D 0/1 values; naming ``trials`` if flags are given together with it.
    """
    if isinstance(successes, (int, np.integer)) and not isinstance(successes, (bool, np.bool_)):
        if trials is None:
            raise ValueError("trials is required when successes is a count")
        count, total = int(successes), trials
    else:
        if trials is not None:
            raise ValueError("trials must be None when successes holds per-example flags")
        flags = _as_correct(successes, "successes")
        count, total = int(flags.sum()), int(flags.numel())
    low, high = wilson_interval(count, total, confidence)
    count, total = int(count), int(total)
    p = count / total
    return Estimate(p, low, high, math.sqrt(p * (1 - p) / total), (), total, confidence, "wilson")
