"""Exercise checkers for the capstone (chapter 08): a clear pass or a precise hint, never a crash.

Each checker takes the learner's *function* (not its result), calls it itself on inputs it
controls, and judges what comes back. Whatever goes wrong in the learner's code (a stub
still raising ``NotImplementedError``, an exception, a wrong shape, a NaN loss) becomes a
message, printed and returned in a :class:`CheckResult`; the checker itself never raises,
so a notebook with unfinished exercises still runs from top to bottom.

Messages start with "Well done!" (passed), "Not implemented yet:" (the stub is untouched),
"Finish exercise N first:" (an earlier exercise is needed), or "Not yet:" (with a hint).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.checks._common import CheckResult, _Failed, _guarded, _verdict
from course_lib.data.clinic import CLASS_NAMES, ClinicData
from course_lib.train import count_parameters

MODALITIES = ("image", "text", "audio")
MAX_PARAMETERS = 2_000_000
TRAINING_BUDGET_S = 20.0


def _call(exercise: str, function: Any, *args: Any, name: str | None = None) -> Any:
    """Call the learner's function; turn a stub or an exception into a :class:`_Failed`."""
    name = name or getattr(function, "__name__", type(function).__name__)
    if isinstance(function, nn.Module) or not callable(function):
        raise _Failed(f"Not yet: {exercise} expects a function, but got {type(function).__name__}"
                      f" {function!r:.60}. Pass the function itself (no parentheses).")
    try:
        return function(*args)
    except NotImplementedError as stub:
        where = f" ({stub})" if str(stub) else ""
        raise _Failed(f"Not implemented yet: {name} raised NotImplementedError{where}. Replace "
                      f"the `raise NotImplementedError` line with your code, then run this "
                      f"cell again.") from None
    except _Failed:
        raise
    except Exception as error:  # noqa: BLE001 - any learner error becomes a hint
        frame = _learner_frame(error)
        raise _Failed(f"Not yet: {name} raised {type(error).__name__}: {error} (line "
                      f"{frame.lineno}, `{(frame.line or '').strip()}`). {_hint_for(error)}"
                      ) from None


def _learner_frame(error: Exception) -> traceback.FrameSummary:
    """The innermost frame of the learner's own code (not torch's, numpy's or the course's)."""
    frames = traceback.extract_tb(error.__traceback__)
    library = ("site-packages", "dist-packages", "course_lib", "/lib/python")
    own = [f for f in frames if not any(part in f.filename for part in library)]
    return (own or frames)[-1]


def _hint_for(error: Exception) -> str:
    text = str(error)
    if "mat1 and mat2" in text or "shape" in text or "size" in text:
        return ("Print the shapes of your tensors: the model expects each modality as "
                "(B, D_m) with D_m = input_dims[m].")
    if isinstance(error, KeyError):
        return "The features dict must have the keys 'image', 'text' and 'audio'."
    if isinstance(error, FloatingPointError):
        return "The loss became NaN or inf: lower the learning rate and check your features."
    return "Read the error, fix the line, and run the check again."


# ----------------------------------------------------------------------------- exercise 1
def _check_features(features: Any, name: str, patients: int) -> None:
    if not isinstance(features, Mapping):
        raise _Failed(f"Not yet: {name} should be a dict modality -> tensor, got "
                      f"{type(features).__name__}.")
    missing = [m for m in MODALITIES if m not in features]
    if missing:
        raise _Failed(f"Not yet: {name} lacks {missing}; it needs the keys {list(MODALITIES)}.")
    for modality in MODALITIES:
        value, label = features[modality], f"{name}[{modality!r}]"
        if not isinstance(value, torch.Tensor):
            raise _Failed(f"Not yet: {label} is a {type(value).__name__}, not a tensor: convert "
                          f"it with torch.as_tensor(..., dtype=torch.float32).")
        if value.dtype != torch.float32:
            raise _Failed(f"Not yet: {label} has dtype {value.dtype}; the models expect "
                          f"torch.float32 (use .float()).")
        if value.ndim not in (2, 3) or len(value) != patients:
            raise _Failed(f"Not yet: {label} has shape {tuple(value.shape)}; expected one row "
                          f"per patient, (N, D) or (N, T, D) with N = {patients}. Flatten "
                          f"images with .flatten(1).")
        if not torch.isfinite(value).all():
            raise _Failed(f"Not yet: {label} contains NaN or inf (a log of zero? a division "
                          f"by a zero standard deviation? add a small epsilon).")
        if patients > 1 and value.flatten(1).std(dim=0).max() == 0:
            raise _Failed(f"Not yet: {label} is the same for every patient: it carries no "
                          f"information.")


def _split(result: Any, who: str) -> tuple[Any, Any]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise _Failed(f"Not yet: {who} should return two dicts, (train_features, "
                      f"test_features); got {type(result).__name__}.")
    return result


def _negation_pair(data: ClinicData) -> ClinicData:
    """Patients 0 and 1 made identical except that one has fever and the other denies it."""
    pair = data.subset(list(range(min(len(data), 16))))
    pair.images[1], pair.waveforms[1] = pair.images[0], pair.waveforms[0]
    pair.reports[0], pair.reports[1] = "Reports fever.", "No fever."
    return pair


@_guarded
def check_tensors(build_tensors: Callable, train_data: ClinicData,
                  test_data: ClinicData) -> CheckResult:
    """Exercise 1: ``build_tensors(train_data, test_data) -> (train_features, test_features)``.

    Checks the two dicts (keys image/text/audio, float32, one row per patient, finite, not
    constant, equal widths), that a test patient's features do not depend on who else is in
    the test split (statistics from the training split only), and that the text features
    keep negations apart ("No fever." vs "Reports fever."). ``value``: the two dicts.
    """
    train, test = _split(_call("check_tensors", build_tensors, train_data, test_data),
                         "build_tensors")
    _check_features(train, "train_features", len(train_data))
    _check_features(test, "test_features", len(test_data))
    for modality in MODALITIES:
        if train[modality].shape[1:] != test[modality].shape[1:]:
            raise _Failed(f"Not yet: train and test features of {modality!r} have different "
                          f"shapes per patient, {tuple(train[modality].shape[1:])} and "
                          f"{tuple(test[modality].shape[1:])}; build both the same way.")
    first_rows = test_data.subset(list(range(min(len(test_data), 8))))
    _, few = _split(_call("check_tensors", build_tensors, train_data, first_rows),
                    "build_tensors")
    _check_features(few, "test_features (for the first test patients)", len(first_rows))
    for modality in MODALITIES:
        if few[modality].shape != test[modality][: len(first_rows)].shape:
            raise _Failed(f"Not yet: the {modality!r} features of the first {len(first_rows)} "
                          f"test patients have shape {tuple(few[modality].shape[1:])} per "
                          f"patient when built alone, {tuple(test[modality].shape[1:])} when "
                          f"built with the others: build them the same way every time.")
        if not torch.allclose(few[modality], test[modality][: len(first_rows)], atol=1e-4):
            raise _Failed(
                f"Not yet: the {modality!r} features of a test patient change when the other "
                f"test patients change. Standardise with the mean and std of the TRAINING "
                f"features only, and apply those same numbers to the test features (statistics "
                f"of the test split leak information about it).")
    _, pair = _split(_call("check_tensors", build_tensors, train_data,
                           _negation_pair(test_data)), "build_tensors")
    _check_features(pair, "test_features (for a pair of reports)",
                    min(len(test_data), 16))
    if torch.equal(pair["text"][0], pair["text"][1]):
        raise _Failed("Not yet: your text features for 'Reports fever.' and 'No fever.' are "
                      "identical: the negation is lost. Use a negation-aware bag of words, "
                      "bag_of_words(reports, negation_aware=True).")
    widths = ", ".join(f"{m} {tuple(train[m].shape[1:])}" for m in MODALITIES)
    return _verdict(True, f"Well done! {len(train_data)} training and {len(test_data)} test "
                          f"patients, features per patient: {widths}; standardised with "
                          f"training statistics only, negations kept.", (train, test))


# ----------------------------------------------------------------------------- exercise 2
def _predict(model: nn.Module, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return model({m: x.to(device) for m, x in features.items()}).detach().cpu()


def _build(build_model: Callable, input_dims: dict[str, int], num_classes: int) -> nn.Module:
    model = _call("check_model", build_model, dict(input_dims), num_classes)
    if not isinstance(model, nn.Module):
        raise _Failed(f"Not yet: build_model should return a torch nn.Module (for example a "
                      f"course_lib.fusion model), got {type(model).__name__}.")
    count = count_parameters(model, trainable_only=True)
    if count == 0:
        raise _Failed("Not yet: your model has no trainable parameters.")
    if count > MAX_PARAMETERS:
        raise _Failed(f"Not yet: your model has {count:,} parameters; keep it under "
                      f"{MAX_PARAMETERS:,} so that training fits in {TRAINING_BUDGET_S:.0f} s "
                      f"on a laptop CPU (a smaller hidden width).")
    return model


@_guarded
def check_model(build_model: Callable) -> CheckResult:
    """Exercise 2: ``build_model(input_dims, num_classes) -> nn.Module``.

    Builds the model for made-up widths (so hard-coded widths are caught), runs a batch of 8
    random patients through it and checks the output ``(8, num_classes)``, that it is finite,
    and that every modality changes it.
    """
    input_dims, num_classes = {"image": 20, "text": 12, "audio": 7}, 4
    model = _build(build_model, input_dims, num_classes)
    generator = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(8, d, generator=generator) for m, d in input_dims.items()}
    model.eval()
    with torch.no_grad():
        try:
            output = _call("check_model", _scores, model, batch, name="your model")
        except _Failed as failure:
            raise _Failed(f"{failure} (This check builds your model for made-up widths "
                          f"{input_dims}: take the widths from input_dims, never hard-code "
                          f"them.)") from None
        _check_scores(output, num_classes)
        # Judge "uses every modality" only for a model that is a function of its inputs: one
        # that returns noise would change its output whatever changed.
        again = _call("check_model", _scores, model, batch, name="your model")
        if not isinstance(again, torch.Tensor) or again.shape != output.shape or not \
                torch.allclose(again, output, rtol=1e-5, atol=1e-6):
            raise _Failed("Not yet: in evaluation mode your model gave different outputs for "
                          "the same batch, twice in a row: its output is random (torch.randn "
                          "or dropout called in forward, or state that changes per call). Make "
                          "the class scores a function of the features.")
        for modality in MODALITIES:
            changed = dict(batch, **{modality: batch[modality] + 3.0})
            moved = _call("check_model", _scores, model, changed, name="your model")
            if not isinstance(moved, torch.Tensor) or moved.shape != output.shape:
                raise _Failed(f"Not yet: with other {modality!r} features your model returned "
                              f"{_shape_of(moved)} instead of {tuple(output.shape)}.")
            if torch.allclose(moved, output):
                raise _Failed(f"Not yet: changing the {modality!r} features does not change "
                              f"your model's output: it ignores {modality}. Pass every "
                              f"modality in input_dims to the fusion model.")
    count = count_parameters(model, trainable_only=True)
    return _verdict(True, f"Well done! Your {type(model).__name__} ({count:,} parameters) turns "
                          f"{input_dims} into {num_classes} class scores and uses every "
                          f"modality.")


def _scores(model: nn.Module, features: Mapping[str, torch.Tensor]) -> Any:
    """What the model returns for ``features`` (on its device), moved to the CPU if a tensor."""
    output = _predict_raw(model, features)
    return output.detach().cpu() if isinstance(output, torch.Tensor) else output


def _predict_raw(model: nn.Module, features: Mapping[str, torch.Tensor]) -> Any:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return model({m: x.to(device) for m, x in features.items()})


def _shape_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _check_scores(output: Any, num_classes: int) -> None:
    """Class scores: a real float tensor (8, num_classes), finite."""
    if not isinstance(output, torch.Tensor) or output.shape != (8, num_classes):
        raise _Failed(f"Not yet: for a batch of 8 patients and {num_classes} classes your "
                      f"model returned {_shape_of(output)}; expected class scores "
                      f"(B, num_classes) = (8, {num_classes}).")
    if not output.is_floating_point():
        raise _Failed(f"Not yet: your model returned class scores of dtype {output.dtype}; "
                      f"scores (logits) are real floats, such as the output of an nn.Linear. "
                      f"Do not round, arg-max or convert them inside the model.")
    if not torch.isfinite(output).all():
        raise _Failed("Not yet: your model's output contains NaN or inf.")


# ----------------------------------------------------------------------------- exercise 3
def _losses_of(history: Any) -> list[float]:
    losses = getattr(history, "losses", history)
    try:
        values = [float(v) for v in losses]
    except (TypeError, ValueError):
        raise _Failed(f"Not yet: train_model should return the History from course_lib.train."
                      f"train (or a list of losses), got {type(history).__name__}.") from None
    if len(values) < 2:
        raise _Failed("Not yet: the history holds fewer than 2 losses: did training run?")
    return values


@_guarded
def check_training(train_model: Callable, build_model: Callable, train_features: Any,
                   train_labels: torch.Tensor, min_accuracy: float = 0.8) -> CheckResult:
    """Exercise 3: ``train_model(model, features, labels) -> History``.

    Builds a fresh model with ``build_model`` (seeded), trains it with ``train_model``, and
    checks that the losses stay finite, that they fall, and the training accuracy (at least
    ``min_accuracy``). ``value``: the trained model.
    """
    if train_features is None:
        raise _Failed("Finish exercise 1 first: check_tensors must pass, so that there are "
                      "training features to learn from.")
    input_dims = {m: int(x.shape[-1]) for m, x in train_features.items()}
    torch.manual_seed(0)
    try:
        model = _build(build_model, input_dims, len(CLASS_NAMES))
    except _Failed as failure:
        raise _Failed(f"Finish exercise 2 first: {failure}") from None
    start = time.perf_counter()
    history = _call("check_training", train_model, model, train_features, train_labels)
    seconds = time.perf_counter() - start
    losses = _losses_of(history)
    if not all(math.isfinite(v) for v in losses):
        step = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        raise _Failed(f"Not yet: the loss became {losses[step]} at step {step}. Lower the "
                      f"learning rate (try 1e-3) and check that your features are finite and "
                      f"standardised.")
    tenth = max(1, len(losses) // 10)
    first, last = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    if last > 0.8 * first:
        raise _Failed(f"Not yet: the loss hardly fell (from {first:.3f} to {last:.3f}). Train "
                      f"for more epochs or with a larger learning rate, and check that each "
                      f"label stays with its patient's features.")
    model.eval()
    with torch.no_grad():
        predictions = _predict(model, train_features).argmax(dim=1)
    accuracy = (predictions == train_labels.cpu()).float().mean().item()
    if accuracy < min_accuracy:
        raise _Failed(f"Not yet: the model fits only {accuracy:.1%} of the training patients "
                      f"(at least {min_accuracy:.0%} expected): it underfits. Train longer or "
                      f"use a wider model.")
    note = (f" It took {seconds:.0f} s, over the {TRAINING_BUDGET_S:.0f} s budget: use fewer "
            f"epochs or a smaller model." if seconds > TRAINING_BUDGET_S else "")
    return _verdict(True, f"Well done! The loss fell from {first:.3f} to {last:.3f} over "
                          f"{len(losses)} steps and the model fits {accuracy:.1%} of the "
                          f"training patients (the test split, in exercise 4, is the honest "
                          f"measure).{note}", model)


# ----------------------------------------------------------------------------- exercise 4
class _VotingModel(nn.Module):
    """A fixed model for checking evaluation code: each modality casts a weighted vote.

    ``features[m]`` holds scaled one-hot votes (B, C); the logits are the weighted sum of the votes
    of the modalities present (a missing one, or an all-zero one, casts no vote). In training
    mode it predicts the opposite (a trap for evaluation code that forgets ``model.eval()``),
    and it records whether gradients were being tracked.
    """

    weights = {"image": 2.0, "text": 3.0, "audio": 1.5}

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.saw_gradients = False
        self.voters: list[str] = []  # the modalities that voted in the last call

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.saw_gradients |= torch.is_grad_enabled()
        self.voters = [m for m, x in features.items() if bool((x != 0).any())]
        logits = sum(self.weights[m] * x for m, x in features.items())
        return self.scale * (-logits if self.training else logits)


def _voting_case(seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
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


def _reference_accuracy(features: Mapping[str, torch.Tensor], labels: torch.Tensor) -> float:
    model = _VotingModel().eval()
    with torch.no_grad():
        return (model(features).argmax(dim=1) == labels).float().mean().item()


def _as_number(value: Any, who: str, verb: str = "returned") -> float:
    """A real number from a Python, numpy or one-element torch value; NaN and inf refused."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        shown = f" {value!r:.60}" if isinstance(value, (str, complex)) else ""
        raise _Failed(f"Not yet: {who} should be the accuracy as a number between 0 and 1, "
                      f"but {verb} {type(value).__name__}{shown}.")
    if not math.isfinite(value):
        raise _Failed(f"Not yet: {who} {verb} {value}, not a finite number: an accuracy is "
                      f"(correct predictions) / (patients). A 0 / 0? Check that there are "
                      f"patients to count.")
    return float(value)


def _as_accuracy(value: Any, who: str, verb: str = "returned") -> float:
    """An accuracy: a finite number in [0, 1], with a hint for a percentage."""
    accuracy = _as_number(value, who, verb)
    if 1.0 < accuracy <= 100.0:
        raise _Failed(f"Not yet: {who} {verb} {accuracy:g}, which looks like a percentage; "
                      f"give a fraction in [0, 1] (divide by 100).")
    if not 0.0 <= accuracy <= 1.0:
        raise _Failed(f"Not yet: {who} {verb} {accuracy:g}; an accuracy lies in [0, 1] (the "
                      f"fraction of patients predicted correctly).")
    return accuracy


def _same(got: float, expected: float) -> bool:
    return math.isclose(got, expected, rel_tol=0.0, abs_tol=1e-6)


@_guarded
def check_evaluation(evaluate: Callable) -> CheckResult:
    """Exercise 4: ``evaluate(model, features, labels) -> float`` (accuracy in [0, 1]).

    Uses a fixed voting model with known accuracies on two made-up test sets; the model
    answers wrongly in training mode, which catches a missing ``model.eval()``.
    """
    saw_gradients = False
    for seed in (0, 1):
        features, labels = _voting_case(seed)
        model = _VotingModel().train()
        returned = _call("check_evaluation", evaluate, model, features, labels)
        expected = _reference_accuracy(features, labels)
        got = _as_number(returned, "evaluate")
        if 1.0 < got <= 100.0 and _same(got / 100, expected):
            raise _Failed(f"Not yet: you returned {got:.1f}, a percentage; return a fraction "
                          f"in [0, 1] ({expected:.3f}).")
        got = _as_accuracy(got, "evaluate")
        if not _same(got, expected):
            hint = ("Call model.eval() before predicting: in training mode, dropout (and this "
                    "test model) behave differently." if model.training
                    else "Compare the arg-max over classes (dim=1) with the labels and take the "
                         "mean of the matches.")
            raise _Failed(f"Not yet: evaluate returned {got:.4f}, but the model's accuracy on "
                          f"these {len(labels)} patients is {expected:.4f}. {hint}")
        saw_gradients |= model.saw_gradients
    tip = (" Tip: wrap the predictions in `with torch.no_grad():` so that no gradients are "
           "tracked while evaluating." if saw_gradients else "")
    return _verdict(True, f"Well done! evaluate gives the right accuracy on two test sets, with "
                          f"the model in evaluation mode.{tip}")


# ----------------------------------------------------------------------------- exercise 5
@_guarded
def check_missing_modality(accuracy_without: Callable) -> CheckResult:
    """Exercise 5: ``accuracy_without(model, features, labels, missing) -> float``.

    The accuracy when modality ``missing`` is absent: the model gets the features without
    it (or, for a model that needs every input, zeros in its place). Checked with a fixed
    voting model where removing each modality gives a different accuracy; the caller's
    dict must not be modified.
    """
    features, labels = _voting_case(2)
    originals = {m: x.clone() for m, x in features.items()}
    for missing in MODALITIES:
        snapshot = dict(features)
        model = _VotingModel()
        got = _as_accuracy(_call("check_missing_modality", accuracy_without, model, features,
                                 labels, missing), "accuracy_without")
        if set(features) != set(snapshot) or any(
                features[m] is not x or not torch.equal(x, originals[m])
                for m, x in snapshot.items()):
            raise _Failed("Not yet: accuracy_without changed the features dict it was given "
                          "(a key was removed or replaced). Build a new dict instead, e.g. "
                          "{m: x for m, x in features.items() if m != missing}.")
        kept = {m: x for m, x in features.items() if m != missing}
        expected = _reference_accuracy(kept, labels)
        if not _same(got, expected):
            if missing in model.voters:
                hint = (f"the model still received {missing!r} (it saw {model.voters}); "
                        f"leave out only that key.")
            elif model.training:
                hint = "call model.eval() before predicting (or reuse your evaluate)."
            else:
                hint = "give the model the other modalities and measure its accuracy."
            raise _Failed(f"Not yet: without {missing!r} the accuracy should be {expected:.4f}, "
                          f"you returned {got:.4f}: {hint}")
    return _verdict(True, "Well done! accuracy_without leaves out exactly the modality asked "
                          "for, and leaves your features untouched.")


# ----------------------------------------------------------------------------- final comparison
@_guarded
def check_comparison(your_accuracy: float | None, baselines: Mapping[str, float]) -> CheckResult:
    """The capstone's goal: your fusion model beats every baseline on the test split.

    ``your_accuracy`` and every baseline must be accuracies (finite numbers in [0, 1]).
    """
    if your_accuracy is None:
        raise _Failed("Finish exercises 1-4 first: there is no trained fusion model to compare.")
    ours = _as_accuracy(your_accuracy, "your_accuracy", "is")
    if not isinstance(baselines, Mapping) or not baselines:
        raise _Failed(f"Not yet: baselines should be a non-empty dict name -> accuracy, got "
                      f"{type(baselines).__name__}.")
    baselines = {str(name): _as_accuracy(acc, f"the baseline {name!r}", "is")
                 for name, acc in baselines.items()}
    beaten = {name: acc for name, acc in baselines.items() if ours <= acc}
    if beaten:
        worst = max(beaten, key=beaten.get)
        raise _Failed(f"Not yet: your model's {ours:.3f} does not beat {worst} "
                      f"({beaten[worst]:.3f}). Does it fuse at the feature level, where the zone "
                      f"named in the report can meet the zone seen on the film?")
    margin = ours - max(baselines.values())
    return _verdict(True, f"Well done! Your model's test accuracy {ours:.3f} beats every "
                          f"baseline, the best of them by {margin:.3f}.")
