"""Exercise checkers for the capstone (chapter 08): a clear pass or a precise hint, never a crash.

Each checker takes the learner's *function* (not its result), calls it itself on inputs it
controls, and judges what comes back. Whatever goes wrong in the learner's code (a stub
still raising ``NotImplementedError``, an exception, a wrong shape, a NaN loss) becomes a
message, printed and returned in a :class:`CheckResult`; the checker itself never raises,
so a notebook with unfinished exercises still runs from top to bottom.

This module holds exercises 2-5 (model, training, evaluation, a missing modality) and is
where the chapter imports every capstone checker from: exercise 1 (the tensors) lives in
:mod:`course_lib.checks.capstone_tensors`, the final comparison, the tiers core, stretch
and robust, and the reference baselines in :mod:`course_lib.checks.capstone_tiers`, the
tier honest in :mod:`course_lib.checks.capstone_honest`.

Messages start with "Well done!" (passed), "Not implemented yet:" (the stub is untouched),
"Finish exercise N first:" (an earlier exercise is needed), or "Not yet:" (with a hint).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from course_lib.checks._capstone_common import (
    MAX_PARAMETERS,
    MODALITIES,
    TRAINING_BUDGET_S,
    StrictVotingModel,
    VotingModel,
    as_accuracy,
    as_number,
    build,
    call,
    capstone_check,
    check_scores,
    reference_accuracy,
    same,
    scores_of,
    shape_of,
    voting_case,
)
from course_lib.checks._common import CheckResult, Failed, verdict
from course_lib.checks.capstone_honest import check_honest
from course_lib.checks.capstone_tensors import check_tensors
from course_lib.checks.capstone_tiers import (
    REFERENCE_RECIPE,
    ROBUST_MIN_ACCURACY,
    STRETCH_MIN_ACCURACY,
    check_comparison,
    check_core,
    check_robust,
    check_stretch,
    train_baselines,
)
from course_lib.data.clinic import CLASS_NAMES
from course_lib.train import count_parameters

__all__ = [
    "MAX_PARAMETERS", "MODALITIES", "REFERENCE_RECIPE",
    "ROBUST_MIN_ACCURACY", "STRETCH_MIN_ACCURACY", "TRAINING_BUDGET_S", "check_comparison",
    "check_core", "check_evaluation", "check_honest", "check_missing_modality", "check_model",
    "check_robust", "check_stretch", "check_tensors", "check_training", "train_baselines",
]

# The historical private names, which the tests of the checkers use.
_Failed, _call, _voting_case, _reference_accuracy = Failed, call, voting_case, reference_accuracy
_VotingModel, _StrictVotingModel = VotingModel, StrictVotingModel
_as_number, _as_accuracy, _same = as_number, as_accuracy, same

# ----------------------------------------------------------------------------- exercise 2
@capstone_check
def check_model(build_model: Callable) -> CheckResult:
    """Exercise 2: ``build_model(input_dims, num_classes) -> nn.Module``.

    Builds the model for made-up widths (so hard-coded widths are caught), runs a batch of 8
    random patients through it and checks the output ``(8, num_classes)``, that it is finite,
    that it is a function of its inputs in eval mode, and that every modality changes it.
    """
    input_dims, num_classes = {"image": 20, "text": 12, "audio": 7}, 4
    model = build("check_model", build_model, input_dims, num_classes)
    generator = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(8, d, generator=generator) for m, d in input_dims.items()}
    model.eval()
    with torch.no_grad():
        output = _eval_scores(model, batch, f"(This check builds your model for made-up widths "
                                            f"{input_dims}: take the widths from input_dims, "
                                            f"never hard-code them.)")
        check_scores(output, 8, num_classes)
        # Judge "uses every modality" only for a model that is a function of its inputs: one
        # that returns noise would change its output whatever changed.
        again = call("check_model", scores_of, model, batch, name="your model")
        if not isinstance(again, torch.Tensor) or again.shape != output.shape or not \
                torch.allclose(again, output, rtol=1e-5, atol=1e-6):
            raise Failed("Not yet: in evaluation mode your model gave different outputs for "
                         "the same batch, twice in a row: its output is random (torch.randn "
                         "or dropout called in forward, or state that changes per call). Make "
                         "the class scores a function of the features.")
        for modality in MODALITIES:
            changed = dict(batch, **{modality: batch[modality] + 3.0})
            moved = call("check_model", scores_of, model, changed, name="your model")
            if not isinstance(moved, torch.Tensor) or moved.shape != output.shape:
                raise Failed(f"Not yet: with other {modality!r} features your model returned "
                             f"{shape_of(moved)} instead of {tuple(output.shape)}.")
            if torch.allclose(moved, output):
                raise Failed(f"Not yet: changing the {modality!r} features does not change "
                             f"your model's output: it ignores {modality}. Pass every "
                             f"modality in input_dims to the fusion model.")
    _check_one_record(build_model, num_classes, batch)
    count = count_parameters(model, trainable_only=True)
    return verdict(True, f"Well done! Your {type(model).__name__} ({count:,} parameters) turns "
                         f"{input_dims} into {num_classes} class scores, uses every "
                         f"modality, and can also be built for one record.")


def _eval_scores(model: torch.nn.Module, features: Mapping[str, torch.Tensor],
                 context: str) -> object:
    """The learner's model on ``features`` (the caller set eval mode); a failure says where."""
    try:
        return call("check_model", scores_of, model, features, name="your model")
    except Failed as failure:
        raise Failed(f"{failure} {context}") from None


def _check_one_record(build_model: Callable, num_classes: int,
                      batch: Mapping[str, torch.Tensor]) -> None:
    """The model built for a one-record dict (later cells build models of some records)."""
    single = {"audio": 5}
    context = (f"(This check also builds your model for one record, {single}: take the "
               f"modalities and their widths from input_dims, never name them.)")
    try:
        model = build("check_model", build_model, single, num_classes)
    except Failed as failure:
        raise Failed(f"{failure} {context}") from None
    features = {"audio": batch["audio"][:, :single["audio"]]}
    model.eval()
    with torch.no_grad():
        output = _eval_scores(model, features, f"(This happened with one record, {single}: "
                                               f"read the modalities from the features dict, "
                                               f"for m, x in features.items().)")
        check_scores(output, len(features["audio"]), num_classes,
                     f"your model of one record, {single},")


# ----------------------------------------------------------------------------- exercise 3
def _losses_of(history: Any) -> list[float]:
    losses = getattr(history, "losses", history)
    try:
        values = [float(v) for v in losses]
    except (TypeError, ValueError):
        raise Failed(f"Not yet: train_model should return the History from course_lib.train."
                     f"train (or a list of losses), got {type(history).__name__}.") from None
    if len(values) < 2:
        raise Failed("Not yet: the history holds fewer than 2 losses: did training run?")
    return values


def _judge_losses(losses: list[float], who: str = "the loss") -> tuple[float, float]:
    """The mean loss of the first and last tenth; a precise hint when it did not fall."""
    if not all(math.isfinite(v) for v in losses):
        step = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        raise Failed(f"Not yet: {who} became {losses[step]} at step {step}. Lower the "
                     f"learning rate (try 1e-3) and check that your features are finite and "
                     f"standardised.")
    start, peak = losses[0], max(losses)
    if peak > 5 * max(start, 0.1):
        raise Failed(f"Not yet: {who} started at {start:.3f} and jumped as high as {peak:.3g}: "
                     f"the steps overshoot. The learning rate is too large (try 1e-3 or "
                     f"2e-3); training longer would not help.")
    tenth = max(1, len(losses) // 10)
    first, last = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    if last > 0.8 * first:
        raise Failed(f"Not yet: {who} hardly fell (from {first:.3f} to {last:.3f}). Check "
                     f"that the optimiser steps (a learning rate that is not tiny, 1e-3 is "
                     f"usual; enough epochs) and that each label stays with its patient's "
                     f"features.")
    return first, last


class _PlainModel(nn.Module):
    """A linear model over the concatenated features of ``input_dims`` (any modalities)."""

    def __init__(self, input_dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__()
        self.input_dims = dict(input_dims)
        self.linear = nn.Linear(sum(self.input_dims.values()), num_classes)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(torch.cat([features[m] for m in self.input_dims], dim=1))


class _OwnLossModel(_PlainModel):
    """A model with its own ``loss`` method (as LateFusion has): a trainer must call it."""

    def __init__(self, input_dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__(input_dims, num_classes)
        self.loss_calls = 0

    def loss(self, features: Mapping[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        self.loss_calls += 1
        return nn.functional.cross_entropy(self(features), labels)


def _train_side_case(train_model: Callable, model: nn.Module, features: dict[str, torch.Tensor],
                     labels: torch.Tensor, what: str) -> list[float]:
    try:
        history = call("check_training", train_model, model, features, labels)
    except Failed as failure:
        raise Failed(f"{failure} (This happened when training {what}.)") from None
    return _losses_of(history)


@capstone_check
def check_training(train_model: Callable, build_model: Callable, train_features: Any,
                   train_labels: torch.Tensor, min_accuracy: float = 0.8) -> CheckResult:
    """Exercise 3: ``train_model(model, features, labels) -> History``.

    Builds a fresh model with ``build_model`` (seeded), trains it with ``train_model``, and
    checks that the losses stay finite, that they fall, and the training accuracy (at least
    ``min_accuracy``). Then it trains two more models on a few patients, as later cells do:
    one that sees a single record (a one-modality dict: no hard-coded keys) and one that
    defines its own ``loss(features, labels)`` method, which must be used. ``value``: the
    trained model.
    """
    if not isinstance(train_features, Mapping) or not train_features or not all(
            isinstance(x, torch.Tensor) for x in train_features.values()):
        raise Failed("Finish exercise 1 first: check_tensors must pass, so that there are "
                     "training features to learn from.")
    if not isinstance(train_labels, torch.Tensor) or train_labels.ndim != 1:
        raise Failed(f"Not yet: train_labels should be a (N,) tensor of class indices, got "
                     f"{shape_of(train_labels)}.")
    min_accuracy = as_accuracy(min_accuracy, "min_accuracy", "is")
    input_dims = {m: int(x.shape[-1]) for m, x in train_features.items()}
    torch.manual_seed(0)
    try:
        model = build("check_training", build_model, input_dims, len(CLASS_NAMES))
    except Failed as failure:
        raise Failed(f"Finish exercise 2 first: {failure}") from None
    start = time.perf_counter()
    history = call("check_training", train_model, model, train_features, train_labels)
    seconds = time.perf_counter() - start
    losses = _losses_of(history)
    first, last = _judge_losses(losses)
    model.eval()
    with torch.no_grad():
        output = call("check_training", scores_of, model, train_features, name="your model")
    check_scores(output, len(train_labels), len(CLASS_NAMES))
    accuracy = (output.argmax(dim=1) == train_labels.cpu()).float().mean().item()
    if accuracy < min_accuracy:
        spread = max(losses[-max(1, len(losses) // 10):]) - min(losses[-max(1, len(losses) // 10):])
        advice = ("The last losses still jump around: lower the learning rate." if spread
                  > 0.5 * last else "Train longer (more epochs) or use a wider model.")
        raise Failed(f"Not yet: the model fits only {accuracy:.1%} of the training patients "
                     f"(at least {min_accuracy:.0%} expected): it underfits. {advice}")
    # The paths later cells use: a model of one record, and a model with its own loss.
    rows = torch.arange(min(len(train_labels), 256))
    single = sorted(train_features)[-1]
    torch.manual_seed(0)
    one = _PlainModel({single: input_dims[single]}, len(CLASS_NAMES))
    one_losses = _train_side_case(train_model, one, {single: train_features[single][rows]},
                                  train_labels[rows], f"a model of one record ({single!r} only)")
    _judge_losses(one_losses, f"the loss of a model of {single!r} only")
    torch.manual_seed(0)
    own = _OwnLossModel(input_dims, len(CLASS_NAMES))
    own_losses = _train_side_case(train_model, own, {m: x[rows] for m, x in
                                                     train_features.items()},
                                  train_labels[rows], "a model with its own loss method")
    if own.loss_calls == 0:
        raise Failed("Not yet: your train_model ignores the model's own loss method. A model "
                     "such as LateFusion defines loss(features, labels) (it trains each "
                     "record's model on its own): when hasattr(model, 'loss'), use it.")
    _judge_losses(own_losses, "the loss of a model with its own loss method")
    note = (f" It took {seconds:.0f} s, over the {TRAINING_BUDGET_S:.0f} s budget: use fewer "
            f"epochs or a smaller model." if seconds > TRAINING_BUDGET_S else "")
    return verdict(True, f"Well done! The loss fell from {first:.3f} to {last:.3f} over "
                         f"{len(losses)} steps and the model fits {accuracy:.1%} of the "
                         f"training patients (the test split is the honest measure). It also "
                         f"trains a model of one record and uses a model's own loss method."
                         f"{note}", model)


# ----------------------------------------------------------------------------- exercise 4
# What check_evaluation gives evaluate: a model of every record and one of two (as the "text
# alone" or late-fusion baselines of later cells are), with features that hold more than the
# model reads (the records it does not use, and a feature built from two of them).
_EVALUATION_CASES = ((0, MODALITIES), (1, ("text", "audio")))


@capstone_check
def check_evaluation(evaluate: Callable) -> CheckResult:
    """Exercise 4: ``evaluate(model, features, labels) -> float`` (accuracy in [0, 1]).

    Uses fixed voting models with known accuracies on two made-up test sets; each model
    answers wrongly in training mode, which catches a missing ``model.eval()``. As in the
    later cells, the features hold more than the model was built for (the second model reads
    only the text and the audio; both sets have an ``"image*text"`` feature): evaluate must
    give the model only ``model.input_dims``, which every model of the course refuses to do
    without (``ValueError``).
    """
    saw_gradients = False
    for seed, modalities in _EVALUATION_CASES:
        votes, labels = voting_case(seed)
        features = dict(votes, **{"image*text": votes["image"] * votes["text"]})
        model = VotingModel(modalities).train()
        try:
            returned = call("check_evaluation", evaluate, model, features, labels)
        except Failed as failure:
            if str(failure).startswith("Not implemented"):
                raise
            raise Failed(f"{failure} (This check gives evaluate a model built for "
                         f"{list(modalities)} and features with the keys {list(features)}, "
                         f"as later cells do.)") from None
        expected = reference_accuracy({m: votes[m] for m in modalities}, labels)
        got = as_number(returned, "evaluate")
        if 1.0 < got <= 100.0 and same(got / 100, expected):
            raise Failed(f"Not yet: you returned {got:.1f}, a percentage; return a fraction "
                         f"in [0, 1] ({expected:.3f}).")
        got = as_accuracy(got, "evaluate")
        if not same(got, expected):
            hint = ("Call model.eval() before predicting: in training mode, dropout (and this "
                    "test model) behave differently." if model.training
                    else "Compare the arg-max over classes (dim=1) with the labels and take the "
                         "mean of the matches.")
            raise Failed(f"Not yet: evaluate returned {got:.4f}, but the model's accuracy on "
                         f"these {len(labels)} patients is {expected:.4f}. {hint}")
        saw_gradients |= model.saw_gradients
    tip = (" Tip: wrap the predictions in `with torch.no_grad():` so that no gradients are "
           "tracked while evaluating." if saw_gradients else "")
    return verdict(True, f"Well done! evaluate gives the right accuracy on two test sets, with "
                         f"the model in evaluation mode and only the modalities it was built "
                         f"for.{tip}")


# ----------------------------------------------------------------------------- exercise 5
@capstone_check
def check_missing_modality(accuracy_without: Callable) -> CheckResult:
    """Exercise 5: ``accuracy_without(model, features, labels, missing) -> float``.

    The accuracy when modality ``missing`` is absent: the model gets the features without
    it, or, for a model that needs every input (``requires_all_modalities``, as early fusion),
    zeros in its place. Checked with two fixed voting models, one that copes with a missing
    key and one that needs every input, where removing each modality gives a different
    accuracy; the caller's dict must not be modified.
    """
    features, labels = voting_case(2)
    originals = {m: x.clone() for m, x in features.items()}
    for kind in (VotingModel, StrictVotingModel):
        for missing in MODALITIES:
            snapshot = dict(features)
            model = kind()
            returned = call("check_missing_modality", accuracy_without, model, features,
                            labels, missing)
            got = as_accuracy(returned, "accuracy_without")
            if set(features) != set(snapshot) or any(
                    features[m] is not x or not torch.equal(x, originals[m])
                    for m, x in snapshot.items()):
                raise Failed("Not yet: accuracy_without changed the features dict it was given "
                             "(a key was removed or replaced). Build a new dict instead, e.g. "
                             "{m: x for m, x in features.items() if m != missing}.")
            kept = {m: x for m, x in features.items() if m != missing}
            expected = reference_accuracy(kept, labels)
            if not same(got, expected):
                if missing in model.voters:
                    hint = (f"the model still received {missing!r} (it saw {model.voters}); "
                            f"leave out only that key (or give zeros in its place).")
                elif model.training:
                    hint = "call model.eval() before predicting (or reuse your evaluate)."
                else:
                    hint = "give the model the other modalities and measure its accuracy."
                raise Failed(f"Not yet: without {missing!r} the accuracy should be "
                             f"{expected:.4f}, you returned {got:.4f}: {hint}")
    return verdict(True, "Well done! accuracy_without leaves out exactly the modality asked "
                         "for, gives zeros to a model that needs every input, and leaves your "
                         "features untouched.")

