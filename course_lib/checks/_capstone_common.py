"""What the capstone's checkers share: calling the learner's code, models and accuracies.

Private to :mod:`course_lib.checks.capstone` (exercises 1-5) and
:mod:`course_lib.checks.capstone_tiers` (the final comparison, the tiers and the honest
choice of a recipe). Every helper raises :class:`~course_lib.checks._common.Failed` with the
learner's message, never anything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.checks._common import CheckResult, Failed, call_learner, guarded
from course_lib.data.clinic import DOCUMENTED_CEILINGS
from course_lib.train import count_parameters

MODALITIES = ("image", "text", "audio")
MAX_PARAMETERS = 2_000_000
TRAINING_BUDGET_S = 20.0
# Seconds one call of the learner's code may take in each checker before it is stopped as
# an endless loop. On a busy 2-core CPU the chapter's own answers take 3.3 s for
# build_tensors (all patients), 8.7 s for train_model (1,920 patients, 40 epochs) and 21 s
# for choose_recipe (two candidates); every limit is over 30 times that, so that a correct
# but slow answer (more epochs, a wider model, a slower computer) is never stopped.
TIME_LIMITS_S = {"check_tensors": 120.0, "check_model": 60.0, "check_training": 300.0,
                 "check_evaluation": 60.0, "check_missing_modality": 60.0,
                 "check_honest": 900.0}
PREDICTION_TIME_LIMIT_S = 60.0  # one forward pass of a model over the test patients
_SLOW = {"check_training": "If it is only slow, train for fewer epochs or a smaller model "
                           "(the chapter's recipe trains in about 10 s).",
         "check_honest": "If it is only slow, train fewer candidates, or each for fewer "
                         "epochs."}


def capstone_check(check: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """A checker of chapter 08, made total by ``guarded``, from whichever module defines it.

    Its verdicts are recorded under the chapter name "capstone" (the column
    ``capstone.check_x`` of ``tools/grade.py``), and it belongs to the public API of
    :mod:`course_lib.checks.capstone`, where the chapter imports it from.
    """
    check.__module__ = "course_lib.checks.capstone"
    return guarded(check)


def call(exercise: str, function: Any, *args: Any, name: str | None = None,
         time_limit_s: float | None = None) -> Any:
    """Call the learner's function; a stub, an exception or a time-out becomes a
    :class:`Failed` whose advice comes from :func:`hint_for` (the shared
    :func:`~course_lib.checks._common.call_learner` with the capstone's hints).

    The time limit is ``time_limit_s``, else the checker's :data:`TIME_LIMITS_S` (read at each
    call), else :data:`PREDICTION_TIME_LIMIT_S`.
    """
    limit = time_limit_s if time_limit_s is not None else TIME_LIMITS_S.get(
        exercise, PREDICTION_TIME_LIMIT_S)
    return call_learner(function, *args, exercise=exercise, name=name, hint=hint_for,
                        time_limit_s=limit, slow=_SLOW.get(exercise, ""))


def hint_for(error: Exception) -> str:
    """One sentence of advice for an exception raised in the learner's code."""
    text = str(error)
    if "but the model was built for" in text:
        return ("Give the model only the modalities it was built for, those in "
                "model.input_dims: {m: x for m, x in features.items() if m in "
                "model.input_dims}. The features can hold more (a feature built from two "
                "records, such as \"image*text\", or records that a model of fewer records "
                "does not read).")
    if "needs all of its modalities" in text or "zero_fill" in text:
        return ("This model needs every input (model.requires_all_modalities is true): give it "
                "zeros for the missing record, zero_fill(features, model.input_dims).")
    if "mat1 and mat2" in text or "shape" in text or "size" in text:
        return ("Print the shapes of your tensors: the model expects each modality as "
                "(B, D_m) with D_m = input_dims[m].")
    if isinstance(error, KeyError):
        return (f"Your code looked up the key {error} in a dict that does not have it: take "
                f"the modalities from the dict itself (for m, x in features.items(), for m, "
                f"width in input_dims.items()) instead of naming them, since some models see "
                f"only one or two records.")
    if isinstance(error, FloatingPointError):
        return "The loss became NaN or inf: lower the learning rate and check your features."
    return "Read the error, fix the line, and run the check again."


def features_dict(value: Any, name: str) -> dict[str, torch.Tensor]:
    """A dict modality -> (N, ...) tensor with the same N everywhere, or a :class:`Failed`."""
    if not isinstance(value, Mapping) or not value or not all(
            isinstance(x, torch.Tensor) and x.ndim >= 2 for x in value.values()):
        raise Failed(f"Finish exercise 1 first: {name} should be a dict modality -> (N, D) "
                     f"tensor (from check_tensors), got {shape_of(value)}.")
    rows = {len(x) for x in value.values()}
    if len(rows) != 1:
        raise Failed(f"Not yet: the tensors of {name} have different numbers of rows {rows}.")
    return dict(value)


def labels_of(value: Any, name: str, rows: int) -> torch.Tensor:
    """A (rows,) integer tensor of class indices, or a :class:`Failed`."""
    if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.is_floating_point() \
            or value.dtype == torch.bool or len(value) != rows:
        raise Failed(f"Not yet: {name} should be a ({rows},) integer tensor of class indices, "
                     f"got {shape_of(value)}.")
    return value


# ----------------------------------------------------------------------------- models
def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def predict_raw(model: nn.Module, features: Mapping[str, torch.Tensor]) -> Any:
    """What ``model`` returns for ``features``, each moved to the model's device."""
    device = model_device(model)
    return model({m: x.to(device) for m, x in features.items()})


def scores_of(model: nn.Module, features: Mapping[str, torch.Tensor]) -> Any:
    """What the model returns for ``features`` (on its device), moved to the CPU if a tensor."""
    output = predict_raw(model, features)
    return output.detach().cpu() if isinstance(output, torch.Tensor) else output


def shape_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def check_scores(output: Any, batch: int, num_classes: int, who: str = "your model") -> None:
    """Class scores: a real float tensor (batch, num_classes), finite."""
    if not isinstance(output, torch.Tensor) or output.shape != (batch, num_classes):
        raise Failed(f"Not yet: for a batch of {batch} patients and {num_classes} classes "
                     f"{who} returned {shape_of(output)}; expected class scores "
                     f"(B, num_classes) = ({batch}, {num_classes}).")
    if not output.is_floating_point():
        raise Failed(f"Not yet: {who} returned class scores of dtype {output.dtype}; "
                     f"scores (logits) are real floats, such as the output of an nn.Linear. "
                     f"Do not round, arg-max or convert them inside the model.")
    if not torch.isfinite(output).all():
        raise Failed(f"Not yet: {who}'s output contains NaN or inf.")


def build(exercise: str, build_model: Callable, input_dims: dict[str, int],
          num_classes: int) -> nn.Module:
    """The learner's model for ``input_dims``: an nn.Module with a sensible parameter count."""
    model = call(exercise, build_model, dict(input_dims), num_classes,
                 name=getattr(build_model, "__name__", None))
    if not isinstance(model, nn.Module):
        raise Failed(f"Not yet: build_model should return a torch nn.Module (for example a "
                     f"course_lib.fusion model), got {type(model).__name__}.")
    count = count_parameters(model, trainable_only=True)
    if count == 0:
        raise Failed("Not yet: your model has no trainable parameters.")
    if count > MAX_PARAMETERS:
        raise Failed(f"Not yet: your model has {count:,} parameters; keep it under "
                     f"{MAX_PARAMETERS:,} so that training fits in {TRAINING_BUDGET_S:.0f} s "
                     f"on a laptop CPU (a smaller hidden width).")
    return model


def inputs_for(model: nn.Module, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The features a model is given: its own modalities (``model.input_dims``) if it says,
    every modality it needs filled with zeros when absent (``requires_all_modalities``)."""
    wanted = getattr(model, "input_dims", None)
    kept = {m: x for m, x in features.items() if not isinstance(wanted, Mapping) or m in wanted}
    if getattr(model, "requires_all_modalities", False) and isinstance(wanted, Mapping):
        reference = next(iter(kept.values()))
        for name, width in wanted.items():
            if name not in kept:
                kept[name] = reference.new_zeros(len(reference), int(width))
    return kept


def correct_flags(model: Any, features: Any, labels: Any, who: str = "your model"
                  ) -> torch.Tensor:
    """Right/wrong (N,) of ``model`` on ``features``, judged by the course, in eval mode.

    Checks that it is a module, that its class scores are finite floats (N, C), and that it
    gives the same scores twice for the same patients (in eval mode a model is a function of
    its inputs: one that outputs noise is caught here).
    """
    if model is None:
        raise Failed("Finish exercises 1 to 3 first: there is no trained model to judge.")
    if not isinstance(model, nn.Module):
        raise Failed(f"Not yet: {who} should be a trained torch nn.Module, got "
                     f"{type(model).__name__}.")
    if not isinstance(features, Mapping) or not features or not all(
            isinstance(x, torch.Tensor) for x in features.values()):
        raise Failed("Finish exercise 1 first: the features should be a dict modality -> "
                     "tensor (the test_features of check_tensors).")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype.is_floating_point:
        raise Failed(f"Not yet: the labels should be a (N,) integer tensor, got "
                     f"{shape_of(labels)}.")
    features = inputs_for(model, features)
    model.eval()
    with torch.no_grad():
        first = call("the check", scores_of, model, features, name=who)
        check_scores(first, len(labels), int(first.shape[-1]) if isinstance(
            first, torch.Tensor) and first.ndim == 2 else 4, who)
        again = call("the check", scores_of, model, features, name=who)
    if not isinstance(again, torch.Tensor) or again.shape != first.shape or not torch.allclose(
            again, first, rtol=1e-5, atol=1e-6):
        raise Failed(f"Not yet: in evaluation mode {who} gave different scores for the same "
                     f"patients twice in a row: its output is random (torch.randn or dropout "
                     f"called in forward). Make the class scores a function of the features.")
    return first.argmax(dim=1) == labels.cpu()


def standard_error(accuracy: float, n: int) -> float:
    return math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / max(n, 1))


def leak_limit(ceiling_name: str, n: int) -> tuple[float, float]:
    """(ceiling, ceiling + 2 standard errors on n patients): above it, test data leaked."""
    ceiling = DOCUMENTED_CEILINGS[ceiling_name]
    return ceiling, ceiling + 2 * standard_error(ceiling, n)


def check_no_leak(accuracy: float, n: int, ceiling_name: str, what: str) -> None:
    """Fail with a leak message when ``accuracy`` is above the ceiling plus two errors."""
    ceiling, limit = leak_limit(ceiling_name, n)
    if accuracy > limit:
        raise Failed(
            f"Not yet: {what} is {accuracy:.3f} on {n} test patients, above the best any model "
            f"can reach ({ceiling:.4f}, the Bayes ceiling) by more than two standard errors "
            f"({limit:.3f}). That is a leak, not skill: the model has seen test patients (trained "
            f"on the test split, or on train + test) or its features contain the labels. Train "
            f"on the training split only and build features without the labels.")


# ----------------------------------------------------------------------------- accuracies
def as_number(value: Any, who: str, verb: str = "returned") -> float:
    """A real number from a Python, numpy or one-element torch value; NaN and inf refused."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        shown = f" {value!r:.60}" if isinstance(value, (str, complex)) else ""
        raise Failed(f"Not yet: {who} should be the accuracy as a number between 0 and 1, "
                     f"but {verb} {type(value).__name__}{shown}.")
    if not math.isfinite(value):
        raise Failed(f"Not yet: {who} {verb} {value}, not a finite number: an accuracy is "
                     f"(correct predictions) / (patients). A 0 / 0? Check that there are "
                     f"patients to count.")
    return float(value)


def as_accuracy(value: Any, who: str, verb: str = "returned") -> float:
    """An accuracy: a finite number in [0, 1], with a hint for a percentage."""
    accuracy = as_number(value, who, verb)
    if 1.0 < accuracy <= 100.0:
        raise Failed(f"Not yet: {who} {verb} {accuracy:g}, which looks like a percentage; "
                     f"give a fraction in [0, 1] (divide by 100).")
    if not 0.0 <= accuracy <= 1.0:
        raise Failed(f"Not yet: {who} {verb} {accuracy:g}; an accuracy lies in [0, 1] (the "
                     f"fraction of patients predicted correctly).")
    return accuracy


def same(got: float, expected: float) -> bool:
    return math.isclose(got, expected, rel_tol=0.0, abs_tol=1e-6)


# ----------------------------------------------------------------------------- voting models
class VotingModel(nn.Module):
    """A fixed model for checking evaluation code: each modality casts a weighted vote.

    ``features[m]`` holds scaled one-hot votes (B, C); the logits are the weighted sum of the
    votes of the modalities present (a missing one, or an all-zero one, casts no vote). In
    training mode it predicts the opposite (a trap for evaluation code that forgets
    ``model.eval()``), and it records whether gradients were being tracked. Like the models
    of ``course_lib.fusion`` it names its modalities in ``input_dims`` (``modalities``, width
    4 each) and refuses, with the same ``ValueError``, a feature it was not built for.
    """

    weights = {"image": 2.0, "text": 3.0, "audio": 1.5}

    def __init__(self, modalities: tuple[str, ...] = MODALITIES) -> None:
        super().__init__()
        self.input_dims = {m: 4 for m in modalities}
        self.scale = nn.Parameter(torch.ones(()))
        self.saw_gradients = False
        self.voters: list[str] = []  # the modalities that voted in the last call

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        for name in features:
            if name not in self.input_dims:
                raise ValueError(f"features has modality {name!r}, but the model was built "
                                 f"for {list(self.input_dims)}")
        self.saw_gradients |= torch.is_grad_enabled()
        self.voters = [m for m, x in features.items() if bool((x != 0).any())]
        logits = sum(self.weights[m] * x for m, x in features.items())
        return self.scale * (-logits if self.training else logits)


class StrictVotingModel(VotingModel):
    """The voting model as early fusion behaves: it needs every input and says so.

    ``requires_all_modalities`` is true and ``input_dims`` names the widths, as in
    :class:`course_lib.fusion.EarlyFusion`; a missing modality raises the same ``ValueError``.
    """

    requires_all_modalities = True

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        absent = [m for m in self.input_dims if m not in features]
        if absent:
            raise ValueError(f"early fusion needs all of its modalities {list(self.input_dims)}"
                             f", but {absent} is missing (zero_fill(features, input_dims) fills "
                             f"in zeros)")
        return super().forward(features)


def voting_case(seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Votes and labels where removing each modality gives a different accuracy."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (40,), generator=generator)
    votes = {}
    for modality, right in (("image", 0.7), ("text", 0.6), ("audio", 0.8)):
        correct = torch.rand(40, generator=generator) < right
        wrong = (labels + torch.randint(1, 4, (40,), generator=generator)) % 4
        strength = 0.5 + torch.rand(40, 1, generator=generator)  # how sure this modality is
        votes[modality] = strength * nn.functional.one_hot(torch.where(correct, labels, wrong), 4)
    return votes, labels


def reference_accuracy(features: Mapping[str, torch.Tensor], labels: torch.Tensor) -> float:
    model = VotingModel().eval()
    with torch.no_grad():
        return (model(features).argmax(dim=1) == labels).float().mean().item()
