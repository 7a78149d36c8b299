"""Reading the clinic's reports: negation-aware words and a bag of words over the vocabulary.

The reports of :mod:`course_lib.data.clinic_records` affirm and deny symptoms ("No fever.",
"Denies weight loss."); :func:`report_tokens` keeps the difference ("no fever") and
:func:`bag_of_words` counts the words of :data:`REPORT_VOCABULARY`, and their negated forms.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from course_lib._validation import ArgumentTypeError, check_allocation, check_flag, describe

STOP_WORDS = ("a", "an", "and", "or", "of", "for", "in", "the", "has", "had", "reports",
              "complains", "was", "is", "year", "old", "since")
NEGATION_CUES = ("no", "denies", "without", "not", "never")
SCOPE_ENDS = (".", ";", "but")  # a negation covers the rest of its sentence
REPORT_VOCABULARY = (
    "fever", "weight", "loss", "night", "sweats", "breathlessness", "cough", "dry",
    "productive", "days", "weeks", "months", "ago", "previous", "x", "ray", "film", "showed",
    "opacity", "clear", "right", "left", "upper", "lower", "zone", "woman", "man", "smoker",
    "smoked",
)


def report_tokens(report: str, negation_aware: bool = True) -> list[str]:
    """Lower-case content words of a report; inside a negation's scope they become "no <word>".

    A negation cue (:data:`NEGATION_CUES`) opens a scope that runs to the end of the sentence
    (or to "but"): a simplified NegEx, the classic clinical negation detector. Stop words and
    numbers are dropped.

    >>> report_tokens("No fever. Reports night sweats.")
    ['no fever', 'night', 'sweats']
    """
    if not isinstance(report, str):
        raise ArgumentTypeError(f"report must be a string, got {type(report).__name__}")
    negation_aware = check_flag("negation_aware", negation_aware)
    tokens, negated = [], False
    for word in re.findall(r"[a-z]+|[.;]", report.lower()):
        if word in SCOPE_ENDS:
            negated = False
        elif word in NEGATION_CUES:
            negated = True
        elif word not in STOP_WORDS:
            tokens.append(f"no {word}" if negated and negation_aware else word)
    return tokens


def bag_of_words(reports: list[str], negation_aware: bool = True) -> torch.Tensor:
    """Word counts over :data:`REPORT_VOCABULARY` (and its negated forms when negation-aware).

    Shape:
        output: (N, V) float32 with V = len(REPORT_VOCABULARY), or (N, 2 V) when
        ``negation_aware``: columns for each word, then for "no <word>".
    """
    if isinstance(reports, (str, torch.Tensor, np.ndarray)) or not isinstance(
            reports, (list, tuple)) or not all(isinstance(r, str) for r in reports):
        raise ArgumentTypeError(f"reports must be a list of strings (one report per patient), "
                                f"got {describe(reports)}")
    negation_aware = check_flag("negation_aware", negation_aware)
    check_allocation("reports", len(reports) * 2 * len(REPORT_VOCABULARY))
    words = list(REPORT_VOCABULARY)
    if negation_aware:
        words += [f"no {w}" for w in REPORT_VOCABULARY]
    column = {w: i for i, w in enumerate(words)}
    counts = torch.zeros(len(reports), len(words))
    for row, report in enumerate(reports):
        for token in report_tokens(report, negation_aware):
            if token in column:
                counts[row, column[token]] += 1
    return counts
