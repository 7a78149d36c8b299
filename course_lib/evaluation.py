"""How sure are we? Intervals for accuracies, for results over seeds, and for paired comparisons.

A single accuracy on a few hundred test examples carries a binomial error of a point or two,
and a single training run carries the luck of its seed. This module puts a number on both:

* :func:`wilson_interval` / :func:`wilson_estimate`: one model evaluated once on ``trials``
  examples (Wilson 1927, "Probable inference, the law of succession, and statistical
  inference", JASA 22(158)).
* :func:`mean_interval` and :func:`repeat_runs`: one recipe trained with several seeds; the
  mean with a Student-t interval over seeds.
* :func:`paired_bootstrap` and :func:`mcnemar_test`: two models on the *same* test examples
  (Efron & Tibshirani 1993, "An Introduction to the Bootstrap"; McNemar 1947, Psychometrika
  12(2)).
* :func:`is_above`, :func:`noise_words`, :func:`describe_comparison`: the only ways the chapters
  order two results, so that a sentence never claims more than the intervals allow.
* :func:`comparison_table` and :func:`plot_estimates` (in :mod:`course_lib.evaluation_tables`,
  importable from here): every comparison is shown with its intervals.

Only the standard library and torch are used (no scipy): the Student-t quantile is computed
from the closed-form t distribution function for integer degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import torch

__all__ = [
    "Estimate",
    "PairedComparison",
    "RunSummary",
    "describe_comparison",
    "is_above",
    "mcnemar_test",
    "mean_interval",
    "noise_words",
    "paired_bootstrap",
    "repeat_runs",
    "separated",
    "student_t_quantile",
    "wilson_estimate",
    "wilson_interval",
]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


# --------------------------------------------------------------------------------------------
# Student-t quantile without scipy
# --------------------------------------------------------------------------------------------
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

    Raises:
        ValueError: if ``probability`` is not in (0, 1) or ``df`` is not a positive integer.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie strictly between 0 and 1, got {probability}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    if probability == 0.5:
        return 0.0
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


# --------------------------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------------------------
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

    @property
    def half_width(self) -> float:
        """Half the interval's width (for a t interval, the +- in "mean +- half_width")."""
        return 0.5 * (self.high - self.low)

    def format(self, digits: int = 3) -> str:
        """``"0.904 [0.892, 0.916]"``: the mean and the interval, rounded to ``digits``."""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def __str__(self) -> str:
        return self.format()


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean of per-seed ``values`` (n,) with a Student-t interval: mean +- t * std / sqrt(n).

    Raises:
        ValueError: if fewer than two values are given (one seed says nothing about seed
            noise), a value is not finite, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    numbers = tuple(float(v) for v in values)
    if len(numbers) < 2:
        raise ValueError(
            f"values needs at least 2 entries (one per seed) to estimate seed noise, "
            f"got {len(numbers)}"
        )
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"values must all be finite, got {numbers}")
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
        ValueError: if ``trials`` < 1, ``successes`` is outside [0, trials], either is not an
            integer, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer count, got {value!r}")
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials={trials}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def _as_correct(correct: torch.Tensor | Sequence[bool], name: str) -> torch.Tensor:
    tensor = torch.as_tensor(correct).detach().cpu()
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
        ValueError: as :func:`wilson_interval`; or if flags are given together with ``trials``.
    """
    if isinstance(successes, int) and not isinstance(successes, bool):
        if trials is None:
            raise ValueError("trials is required when successes is a count")
        count, total = successes, trials
    else:
        if trials is not None:
            raise ValueError("trials must be None when successes holds per-example flags")
        flags = _as_correct(successes, "successes")
        count, total = int(flags.sum()), int(flags.numel())
    low, high = wilson_interval(count, total, confidence)
    p = count / total
    return Estimate(p, low, high, math.sqrt(p * (1 - p) / total), (), total, confidence, "wilson")


# --------------------------------------------------------------------------------------------
# Repeated runs over seeds
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary(Mapping[str, Estimate]):
    """Results of one recipe trained once per seed: one :class:`Estimate` per metric.

    It is a read-only mapping ``metric name -> Estimate``; a run that returned a bare float is
    stored under the key ``"value"``. ``summary["accuracy"].mean``, ``.low``, ``.high``,
    ``.std`` and ``.values`` give the per-key mean, interval, spread and raw values.
    """

    seeds: tuple[int, ...]
    estimates: dict[str, Estimate]

    def __getitem__(self, key: str) -> Estimate:
        try:
            return self.estimates[key]
        except KeyError:
            raise KeyError(
                f"no metric {key!r} in this summary; it has {sorted(self.estimates)}"
            ) from None

    def __iter__(self):
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)

    def mean(self, key: str = "value") -> float:
        return self[key].mean

    def std(self, key: str = "value") -> float:
        return self[key].std

    def interval(self, key: str = "value") -> tuple[float, float]:
        return self[key].low, self[key].high

    def raw(self, key: str = "value") -> tuple[float, ...]:
        """The per-seed values of metric ``key``, in the order of :attr:`seeds`."""
        return self[key].values


def repeat_runs(
    run: Callable[[int], float | Mapping[str, float]],
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    confidence: float = 0.95,
) -> RunSummary:
    """Call ``run(seed)`` once per seed and summarise each returned metric over seeds.

    Args:
        run: trains and evaluates one model from ``seed``; returns a float or a mapping
            ``metric name -> float`` (the same keys for every seed).
        seeds: at least two distinct seeds; five is the course's default.
        confidence: coverage of the Student-t interval.

    Raises:
        ValueError: if fewer than two distinct seeds are given, or ``run`` returns different
            keys for different seeds, or a non-finite value.
    """
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 2:
        raise ValueError(f"seeds needs at least 2 seeds to measure seed noise, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    _check_confidence(confidence)
    collected: dict[str, list[float]] = {}
    keys: tuple[str, ...] | None = None
    for seed in seeds:
        result = run(seed)
        metrics = {"value": result} if isinstance(result, (int, float)) else dict(result)
        if keys is None:
            keys = tuple(metrics)
            if not keys:
                raise ValueError("run returned an empty mapping; return a float or metrics")
        elif tuple(metrics) != keys:
            raise ValueError(
                f"run must return the same metrics for every seed: seed {seeds[0]} gave "
                f"{list(keys)}, seed {seed} gave {list(metrics)}"
            )
        for key, value in metrics.items():
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"run returned a non-finite {key}={number} for seed {seed}")
            collected.setdefault(key, []).append(number)
    estimates = {key: mean_interval(vals, confidence) for key, vals in collected.items()}
    return RunSummary(seeds, estimates)


# --------------------------------------------------------------------------------------------
# Paired comparisons on one test set
# --------------------------------------------------------------------------------------------
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
        ValueError: if the flags are not 1-D 0/1 of the same length, or ``resamples`` < 100.
    """
    a = _as_correct(correct_a, "correct_a")
    b = _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"correct_a and correct_b must flag the same examples, got {a.numel()} and "
            f"{b.numel()} entries"
        )
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")
    _check_confidence(confidence)
    n = a.numel()
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


# --------------------------------------------------------------------------------------------
# Words and orderings
# --------------------------------------------------------------------------------------------
def _check_estimate(value: Any, name: str) -> Estimate:
    if not isinstance(value, Estimate):
        raise ValueError(f"{name} must be an Estimate (from repeat_runs, mean_interval or "
                         f"wilson_estimate), got {type(value).__name__}")
    return value


def is_above(a: Estimate, b: Estimate) -> bool:
    """True when the whole interval of ``a`` lies above the whole interval of ``b``.

    This is the only ordering the chapters assert: ``assert is_above(hybrid, late)``.
    """
    a, b = _check_estimate(a, "a"), _check_estimate(b, "b")
    return a.low > b.high


def separated(a: Estimate | PairedComparison, b: Estimate | None = None) -> bool:
    """True when two results are told apart by their intervals.

    ``separated(a, b)`` for two Estimates: their intervals do not overlap.
    ``separated(comparison)`` for a :class:`PairedComparison`: its interval excludes 0.
    """
    if isinstance(a, PairedComparison):
        if b is not None:
            raise ValueError("b must be None when a is a PairedComparison")
        return a.separated
    a = _check_estimate(a, "a")
    b = _check_estimate(b, "b")
    return a.low > b.high or b.low > a.high


def noise_words(a: Estimate | PairedComparison, b: Estimate | None = None) -> str:
    """``"beyond noise"`` when :func:`separated` holds, else ``"within noise"``."""
    return "beyond noise" if separated(a, b) else "within noise"


def describe_comparison(
    name_a: str, a: Estimate, name_b: str, b: Estimate, *, digits: int = 3
) -> str:
    """One sentence that claims no more than the intervals allow.

    ``"hybrid 0.912 [0.901, 0.923] is above late 0.870 [0.858, 0.882]: beyond noise."`` or
    ``"early 0.904 [0.890, 0.918] and hybrid 0.900 [0.887, 0.913] differ by 0.004: within
    noise."``
    """
    a, b = _check_estimate(a, "a"), _check_estimate(b, "b")
    if is_above(a, b):
        return f"{name_a} {a.format(digits)} is above {name_b} {b.format(digits)}: beyond noise."
    if is_above(b, a):
        return f"{name_b} {b.format(digits)} is above {name_a} {a.format(digits)}: beyond noise."
    return (
        f"{name_a} {a.format(digits)} and {name_b} {b.format(digits)} differ by "
        f"{abs(a.mean - b.mean):.{digits}f}: within noise."
    )


# --------------------------------------------------------------------------------------------
# Tables and charts live in course_lib.evaluation_tables; they are importable from here too.
# --------------------------------------------------------------------------------------------
_TABLES = ("comparison_table", "plot_estimates")


def __getattr__(name: str):
    if name in _TABLES:
        from course_lib import evaluation_tables

        return getattr(evaluation_tables, name)
    raise AttributeError(f"module 'course_lib.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_TABLES))
