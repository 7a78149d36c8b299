"""Two models on the same test examples: a paired bootstrap interval and McNemar's test.

Part of :mod:`course_lib.evaluation` (import from there). Efron & Tibshirani 1993, "An
Introduction to the Bootstrap"; McNemar 1947, "Note on the sampling error of the difference
between correlated proportions or percentages", Psychometrika 12(2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from course_lib._validation import (
    MAX_ELEMENTS,
    check_allocation,
    check_int,
)
from course_lib.evaluation_intervals import _as_correct, _check_confidence

__all__ = ["PairedComparison", "mcnemar_test", "paired_bootstrap"]


@dataclass(frozen=True)
class PairedComparison:
    """Accuracy of A minus accuracy of B on the same examples, with an interval.

    Attributes:
        difference: observed accuracy(A) - accuracy(B).
        low, high: percentile bootstrap interval of the difference.
        p_value: two-sided bootstrap p-value for "no difference".
        n: number of paired examples.
    """

    difference: float
    low: float
    high: float
    p_value: float
    n: int
    confidence: float = 0.95

    @property
    def separated(self) -> bool:
        """True when the interval of the difference excludes 0."""
        return self.low > 0.0 or self.high < 0.0

    def format(self, digits: int = 3) -> str:
        return f"{self.difference:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def __str__(self) -> str:
        return self.format()


def paired_bootstrap(
    correct_a: torch.Tensor | Sequence[bool],
    correct_b: torch.Tensor | Sequence[bool],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Is model A better than B on the same test set? Resample examples, keep pairs together.

    Each resample draws N example indices with replacement and takes the difference of the
    two accuracies on them; the interval holds the central ``confidence`` of those
    differences, the p-value is twice the smaller tail beyond 0.

    Args:
        correct_a, correct_b: (N,) right/wrong flags of models A and B on the same examples.
        resamples: number of bootstrap resamples.
        seed: seed of the resampling (the answer is deterministic given it).

    Raises:
        ValueError / TypeError: naming ``correct_a`` / ``correct_b`` unless they are 1-D 0/1
            flags of the same length; ``resamples`` unless it is an integer >= 100 with
            resamples x N at most 2**26 draws; ``confidence`` unless in (0, 1); ``seed``
            unless a non-negative integer.
    """
    a = _as_correct(correct_a, "correct_a")
    b = _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"correct_a and correct_b must flag the same examples, got {a.numel()} and "
            f"{b.numel()} entries"
        )
    resamples = check_int("resamples", resamples, minimum=100)
    confidence = _check_confidence(confidence)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    n = a.numel()
    check_allocation("resamples", resamples * n, MAX_ELEMENTS, "resampled examples")
    per_example = a.double() - b.double()  # (N,) in {-1, 0, 1}
    generator = torch.Generator().manual_seed(seed)
    differences = torch.empty(resamples, dtype=torch.float64)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        index = torch.randint(0, n, (stop - start, n), generator=generator)
        differences[start:stop] = per_example[index].mean(dim=1)
    tail = (1.0 - confidence) / 2.0
    low, high = torch.quantile(differences, torch.tensor([tail, 1.0 - tail], dtype=torch.float64))
    below = float((differences <= 0).double().mean())
    above = float((differences >= 0).double().mean())
    p_value = min(1.0, 2.0 * min(below, above))
    return PairedComparison(
        float(per_example.mean()), float(low), float(high), p_value, n, confidence
    )


def mcnemar_test(
    correct_a: torch.Tensor | Sequence[bool], correct_b: torch.Tensor | Sequence[bool]
) -> float:
    """Exact two-sided McNemar p-value for "A and B are equally accurate" on paired examples.

    Only the discordant examples count: b = A right and B wrong, c = A wrong and B right.
    Under the null each discordant example is a fair coin, so
    p = min(1, 2 * sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c)); p = 1 when b + c = 0.

    Raises:
        ValueError: if the flags are not 1-D 0/1 of the same length.
    """
    a = _as_correct(correct_a, "correct_a")
    b = _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"correct_a and correct_b must flag the same examples, got {a.numel()} and "
            f"{b.numel()} entries"
        )
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    smaller = min(only_a, only_b)
    tail = math.fsum(math.comb(discordant, k) for k in range(smaller + 1)) / 2.0**discordant
    return min(1.0, 2.0 * tail)
