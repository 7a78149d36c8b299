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

Import everything from here. The orderings and sentences live in this module; the intervals
in :mod:`course_lib.evaluation_intervals`, the seeds in :mod:`course_lib.evaluation_seeds`,
the paired tests in :mod:`course_lib.evaluation_paired`.
"""

from __future__ import annotations

from typing import Any

from course_lib._validation import ArgumentTypeError, check_text, describe
from course_lib.evaluation_intervals import (  # noqa: F401 - re-exported
    Estimate,
    _check_digits,
    mean_interval,
    student_t_quantile,
    wilson_estimate,
    wilson_interval,
)
from course_lib.evaluation_paired import PairedComparison, mcnemar_test, paired_bootstrap
from course_lib.evaluation_seeds import RunSummary, repeat_runs

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


def _check_estimate(value: Any, name: str) -> Estimate:
    if not isinstance(value, Estimate):
        raise ArgumentTypeError(f"{name} must be an Estimate (from repeat_runs, mean_interval "
                                f"or wilson_estimate), got {type(value).__name__}")
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
            raise ArgumentTypeError("b must be None when a is a PairedComparison, got "
                                    f"{describe(b)}")
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
    check_text("name_a", name_a)
    check_text("name_b", name_b)
    digits = _check_digits(digits)
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
