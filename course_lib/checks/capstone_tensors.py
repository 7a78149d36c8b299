"""The capstone's exercise 1 checker: the tensors of the clinic's three records.

:func:`check_tensors` calls the learner's ``build_tensors(train_data, test_data)`` on splits
it controls: the real ones, a few training patients handed over as the test split, the
first test patients alone, a pair of reports that differ by a negation, recordings shifted
in time; and it reads the features back for a label that was left in. Each mistake gets its
own message; imported from :mod:`course_lib.checks.capstone` as the chapter does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from course_lib.checks._capstone_common import MODALITIES, call, capstone_check
from course_lib.checks._common import CheckResult, Failed, verdict
from course_lib.data.clinic import CLASS_NAMES, DOCUMENTED_CEILINGS, ClinicData

SHIFT_SAMPLES = 1_000  # the recordings are rolled by a quarter of a second
SHIFT_TOLERANCE = 0.35  # largest relative change of the audio features allowed


# ----------------------------------------------------------------------------- exercise 1
def _check_features(features: Any, name: str, patients: int) -> None:
    if not isinstance(features, Mapping):
        raise Failed(f"Not yet: {name} should be a dict modality -> tensor, got "
                     f"{type(features).__name__}.")
    missing = [m for m in MODALITIES if m not in features]
    if missing:
        raise Failed(f"Not yet: {name} lacks {missing}; it needs the keys {list(MODALITIES)}.")
    for modality in MODALITIES:
        value, label = features[modality], f"{name}[{modality!r}]"
        if not isinstance(value, torch.Tensor):
            raise Failed(f"Not yet: {label} is a {type(value).__name__}, not a tensor: convert "
                         f"it with torch.as_tensor(..., dtype=torch.float32).")
        if value.dtype != torch.float32:
            raise Failed(f"Not yet: {label} has dtype {value.dtype}; the models expect "
                         f"torch.float32 (use .float()).")
        if value.ndim not in (2, 3) or len(value) != patients:
            raise Failed(f"Not yet: {label} has shape {tuple(value.shape)}; expected one row "
                         f"per patient, (N, D) or (N, T, D) with N = {patients}. Flatten "
                         f"images with .flatten(1).")
        if not torch.isfinite(value).all():
            raise Failed(f"Not yet: {label} contains NaN or inf (a log of zero? a division "
                         f"by a zero standard deviation? add a small epsilon).")
        if patients > 1 and value.flatten(1).std(dim=0).max() == 0:
            raise Failed(f"Not yet: {label} is the same for every patient: it carries no "
                         f"information.")


def _split(result: Any, who: str) -> tuple[Any, Any]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise Failed(f"Not yet: {who} should return two dicts, (train_features, "
                     f"test_features); got {type(result).__name__}.")
    return result


def _negation_pair(data: ClinicData) -> ClinicData:
    """Patients 0 and 1 made identical except that one has fever and the other denies it."""
    pair = data.subset(list(range(min(len(data), 16))))
    pair.images[1], pair.waveforms[1] = pair.images[0], pair.waveforms[0]
    pair.reports[0], pair.reports[1] = "Reports fever.", "No fever."
    return pair


def _check_standardised(train: Mapping[str, torch.Tensor]) -> None:
    """Every column that varies over the training patients has mean 0 and std 1 there."""
    for modality in MODALITIES:
        columns = train[modality].flatten(1)
        if len(columns) < 8:
            continue
        std = columns.std(dim=0)
        varying = std > 1e-4
        if not varying.any():
            continue
        mean_off = columns.mean(dim=0)[varying].abs().max().item()
        std_off = (std[varying] - 1).abs().max().item()
        if mean_off > 0.05 or std_off > 0.1:
            raise Failed(f"Not yet: train_features[{modality!r}] is not standardised: its "
                         f"columns have means up to {mean_off:.3g} away from 0 and standard "
                         f"deviations up to {std_off:.3g} away from 1. Subtract each column's "
                         f"mean over the training patients and divide by its standard deviation "
                         f"(+ 1e-6).")


def _check_no_labels(train: Mapping[str, torch.Tensor], test: Mapping[str, torch.Tensor],
                     train_labels: torch.Tensor, test_labels: torch.Tensor) -> None:
    """No column, and no linear read-out of one modality, gives away the diagnosis."""
    classes = len(CLASS_NAMES)
    for modality in MODALITIES:
        columns = train[modality].flatten(1).double()
        for index in range(columns.shape[1]):
            values, inverse = torch.unique(columns[:, index], return_inverse=True)
            if len(values) > 12 or len(columns) < 20:
                continue
            table = torch.zeros(len(values), classes, dtype=torch.float64)
            table.index_put_((inverse, train_labels.cpu()), torch.ones(len(inverse),
                             dtype=torch.float64), accumulate=True)
            if table.max(dim=1).values.sum().item() >= 0.99 * len(columns):
                raise Failed(f"Not yet: column {index} of train_features[{modality!r}] tells "
                             f"the diagnosis of every training patient: the labels are in the "
                             f"features (a label column left in?). Build the features from the "
                             f"films, reports and recordings only.")
        # A ridge read-out of this modality alone, fitted on train and scored on test.
        x = torch.cat([columns, torch.ones(len(columns), 1, dtype=torch.float64)], dim=1)
        targets = nn.functional.one_hot(train_labels.cpu(), classes).double()
        ridge = 1e-3 * len(x) * torch.eye(x.shape[1], dtype=torch.float64)
        weights = torch.linalg.solve(x.T @ x + ridge, x.T @ targets)
        test_x = test[modality].flatten(1).double()
        test_x = torch.cat([test_x, torch.ones(len(test_x), 1, dtype=torch.float64)], dim=1)
        accuracy = ((test_x @ weights).argmax(1) == test_labels.cpu()).double().mean().item()
        ceiling = DOCUMENTED_CEILINGS[modality]
        limit = ceiling + 3 * math.sqrt(ceiling * (1 - ceiling) / len(test_x))
        if accuracy > max(limit, 0.9):
            raise Failed(f"Not yet: the {modality!r} features alone predict the diagnosis of "
                         f"{accuracy:.1%} of the test patients with a linear read-out, above "
                         f"the best any model can do from the {modality} ({ceiling:.4f}): the "
                         f"labels are in the features. Build them from the records only.")


def _rolled(data: ClinicData, rows: int, shift: int) -> tuple[ClinicData, ClinicData]:
    """The first ``rows`` patients, and the same with every recording rolled by ``shift``."""
    first = data.subset(list(range(min(len(data), rows))))
    moved = dataclasses.replace(first, waveforms=torch.roll(first.waveforms, shift, dims=1),
                                reports=list(first.reports), latents=dict(first.latents))
    return first, moved


@capstone_check
def check_tensors(build_tensors: Callable, train_data: ClinicData,
                  test_data: ClinicData) -> CheckResult:
    """Exercise 1: ``build_tensors(train_data, test_data) -> (train_features, test_features)``.

    Checks the two dicts (keys image/text/audio, float32, one row per patient, finite, not
    constant, equal widths); that the training features are standardised; that a patient gets
    the same features as a test patient as in the training split (the test features are
    standardised with the training statistics, not left raw, not with their own); that a test
    patient's features do not depend on who else is in the test split; that the text
    features keep negations apart ("No fever." vs "Reports fever."); that the audio features
    barely move when a recording starts at another point of the breath cycle (pooled over
    time, not over mel bands); and that no column or linear read-out gives the labels away.
    ``value``: the two dicts.
    """
    if not isinstance(train_data, ClinicData) or not isinstance(test_data, ClinicData):
        raise Failed("Not yet: check_tensors(build_tensors, train_data, test_data) needs the "
                     "two splits of the clinic, from load_clinic.")
    train, test = _split(call("check_tensors", build_tensors, train_data, test_data),
                         "build_tensors")
    _check_features(train, "train_features", len(train_data))
    _check_features(test, "test_features", len(test_data))
    for modality in MODALITIES:
        if train[modality].shape[1:] != test[modality].shape[1:]:
            raise Failed(f"Not yet: train and test features of {modality!r} have different "
                         f"shapes per patient, {tuple(train[modality].shape[1:])} and "
                         f"{tuple(test[modality].shape[1:])}; build both the same way.")
    _check_standardised(train)
    first_rows = test_data.subset(list(range(min(len(test_data), 8))))
    _, few = _split(call("check_tensors", build_tensors, train_data, first_rows),
                    "build_tensors")
    _check_features(few, "test_features (for the first test patients)", len(first_rows))
    for modality in MODALITIES:
        if few[modality].shape != test[modality][: len(first_rows)].shape:
            raise Failed(f"Not yet: the {modality!r} features of the first {len(first_rows)} "
                         f"test patients have shape {tuple(few[modality].shape[1:])} per "
                         f"patient when built alone, {tuple(test[modality].shape[1:])} when "
                         f"built with the others: build them the same way every time.")
        if not torch.allclose(few[modality], test[modality][: len(first_rows)], atol=1e-4):
            raise Failed(
                f"Not yet: the {modality!r} features of a test patient change when the other "
                f"test patients change. Standardise with the mean and std of the TRAINING "
                f"features only, and apply those same numbers to the test features (statistics "
                f"of the test split leak information about it).")
    # The first training patients, handed over as the test split, must get the features they
    # have in train_features: the test split goes through exactly the same transform.
    known = train_data.subset(list(range(min(len(train_data), 8))))
    _, again = _split(call("check_tensors", build_tensors, train_data, known), "build_tensors")
    _check_features(again, "test_features (for training patients)", len(known))
    for modality in MODALITIES:
        if again[modality].shape != train[modality][: len(known)].shape or not torch.allclose(
                again[modality], train[modality][: len(known)], atol=1e-4):
            raise Failed(
                f"Not yet: handed some training patients as test_data, build_tensors gave them "
                f"other {modality!r} features than in train_features. Transform the test "
                f"split exactly like the training split: standardise the test features too "
                f"(they must not stay raw), with the mean and std of the TRAINING features.")
    _, pair = _split(call("check_tensors", build_tensors, train_data,
                          _negation_pair(test_data)), "build_tensors")
    _check_features(pair, "test_features (for a pair of reports)", min(len(test_data), 16))
    if torch.equal(pair["text"][0], pair["text"][1]):
        raise Failed("Not yet: your text features for 'Reports fever.' and 'No fever.' are "
                     "identical: the negation is lost. Use a negation-aware bag of words, "
                     "bag_of_words(reports, negation_aware=True).")
    still, moved = _rolled(test_data, 16, SHIFT_SAMPLES)
    _, shifted = _split(call("check_tensors", build_tensors, train_data, moved),
                        "build_tensors")
    _check_features(shifted, "test_features (recordings shifted in time)", len(still))
    base = test["audio"][: len(still)].flatten(1)
    change = ((shifted["audio"].flatten(1) - base).norm() / base.norm().clamp_min(1e-8)).item()
    if change > SHIFT_TOLERANCE:
        raise Failed(f"Not yet: starting each recording a quarter of a second later changes "
                     f"your audio features by {change:.0%} (relative): they follow where the "
                     f"breath cycle starts. Summarise each mel band over TIME (the last axis of "
                     f"the log-mel spectrogram, (N, n_mels, T)): mean, std, max over dim=-1, "
                     f"not over the mel bands.")
    _check_no_labels(train, test, train_data.labels, test_data.labels)
    widths = ", ".join(f"{m} {tuple(train[m].shape[1:])}" for m in MODALITIES)
    return verdict(True, f"Well done! {len(train_data)} training and {len(test_data)} test "
                         f"patients, features per patient: {widths}; both splits standardised "
                         f"with training statistics only, negations kept, audio features "
                         f"that do not depend on where the breath cycle starts, no label in "
                         f"the features.", (train, test))
