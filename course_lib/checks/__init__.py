"""Exercise checkers: a clear "Well done!" or a precise hint, never a crash.

One module per chapter with exercises (``course_lib.checks.ch07``, ...) and
:mod:`course_lib.checks.capstone` for chapter 08 (which also re-exports exercise 1 from
``capstone_tensors``, the tiers from ``capstone_tiers`` and ``capstone_honest``); what they
share (the verdict, calling the learner's function safely and with a time limit, the gate
for tensor results, NaN-safe comparisons, the machine-readable record that
``tools/grade.py`` reads back) lives in :mod:`course_lib.checks._common`.

The capstone's checkers are also importable from here, as before the package was split::

    from course_lib import checks
    checks.check_model(build_model)
"""

from __future__ import annotations

from typing import Any

from course_lib.checks import capstone
from course_lib.checks._common import RECORD_KEY, CheckResult
from course_lib.checks.capstone import (
    MAX_PARAMETERS,
    MODALITIES,
    REFERENCE_RECIPE,
    ROBUST_MIN_ACCURACY,
    STRETCH_MIN_ACCURACY,
    TRAINING_BUDGET_S,
    check_comparison,
    check_core,
    check_evaluation,
    check_honest,
    check_missing_modality,
    check_model,
    check_robust,
    check_stretch,
    check_tensors,
    check_training,
    train_baselines,
)

__all__ = [
    "MAX_PARAMETERS",
    "MODALITIES",
    "RECORD_KEY",
    "REFERENCE_RECIPE",
    "ROBUST_MIN_ACCURACY",
    "STRETCH_MIN_ACCURACY",
    "TRAINING_BUDGET_S",
    "CheckResult",
    "check_comparison",
    "check_core",
    "check_evaluation",
    "check_honest",
    "check_missing_modality",
    "check_model",
    "check_robust",
    "check_stretch",
    "check_tensors",
    "check_training",
    "train_baselines",
]


def __getattr__(name: str) -> Any:
    """Any other name of the capstone module (a checker added later, a helper its tests use)."""
    if hasattr(capstone, name):
        return getattr(capstone, name)
    raise AttributeError(f"module 'course_lib.checks' has no attribute {name!r}")
