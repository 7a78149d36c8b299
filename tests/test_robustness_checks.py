"""The capstone checkers never raise and never pass a wrong answer.

Each property hands a checker generated answers of the kinds learners write: NaN, inf,
None, strings, out-of-range numbers, percentages, random outputs, wrong shapes and dtypes,
functions that raise. The checker must return a :class:`CheckResult` that did not pass;
right answers, in any numeric type (Python, numpy, torch), must pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import covers, numpy_scalars
from torch import nn

from course_lib import checks
from course_lib.checks import (
    CheckResult,
    check_comparison,
    check_evaluation,
    check_missing_modality,
    check_model,
    check_tensors,
    check_training,
)
from course_lib.fusion import zero_fill

# Answers that are not an accuracy in [0, 1]: what a learner's function might return.
not_an_accuracy = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), None, "0.5", "high", True,
                     False, [0.5], (0.5,), {"accuracy": 0.5}, 0.5 + 0j, np.nan,
                     np.float32("nan"), torch.tensor(float("nan")), torch.tensor([0.5, 0.5]),
                     np.array([0.5, 0.5]), torch.tensor(True), np.bool_(True)]),
    st.floats(1.0, 1e12, exclude_min=True), st.floats(-1e12, 0.0, exclude_max=True),
    st.integers(2, 10**6), st.integers(-10**6, -1),
)


def not_passed(result: CheckResult) -> bool:
    return isinstance(result, CheckResult) and result.passed is False and (
        result.message.startswith(("Not yet:", "Not implemented yet:", "Finish exercise")))


def _raises(kind: type[Exception]):
    def learner(*args):
        raise kind("learner error")
    return learner


errors = st.sampled_from([ValueError, RuntimeError, KeyError, ZeroDivisionError, TypeError,
                          AttributeError, IndexError, FloatingPointError, AssertionError,
                          NotImplementedError, RecursionError])


def _correct_evaluate(model, features, labels):
    model.eval()
    wanted = getattr(model, "input_dims", features)
    with torch.no_grad():
        scores = model({m: x for m, x in features.items() if m in wanted})
    return (scores.argmax(dim=1) == labels).float().mean().item()


def _correct_without(model, features, labels, missing):
    kept = {m: x for m, x in features.items() if m != missing}
    if getattr(model, "requires_all_modalities", False):
        kept = zero_fill(kept, model.input_dims)
    return _correct_evaluate(model, kept, labels)


# ----------------------------------------------------------------------------- exercise 4 and 5
@covers(check_evaluation, CheckResult)
@given(not_an_accuracy)
def test_check_evaluation_never_passes_what_is_not_an_accuracy(answer):
    assert not_passed(check_evaluation(lambda model, features, labels: answer))


@covers(check_evaluation)
@given(st.floats(0, 1), st.booleans())
def test_check_evaluation_never_passes_a_guess(guess, with_eval):
    def guessing(model, features, labels):
        if with_eval:
            model.eval()
        return guess

    result = check_evaluation(guessing)
    assert not_passed(result)  # no single number is right for both test sets


@covers(check_evaluation)
@given(errors)
def test_check_evaluation_turns_any_error_into_a_hint(error):
    assert not_passed(check_evaluation(_raises(error)))


@covers(check_evaluation)
@given(numpy_scalars())
def test_check_evaluation_accepts_a_right_accuracy_in_any_numeric_type(as_type):
    result = check_evaluation(lambda *args: as_type(_correct_evaluate(*args)))
    assert result.passed, result.message


@covers(check_missing_modality)
@given(not_an_accuracy)
def test_check_missing_modality_never_passes_what_is_not_an_accuracy(answer):
    assert not_passed(check_missing_modality(lambda model, features, labels, missing: answer))


@covers(check_missing_modality)
@given(st.one_of(errors.map(_raises), st.floats(0, 1).map(lambda v: lambda *args: v)))
def test_check_missing_modality_never_passes_errors_or_guesses(answer):
    assert not_passed(check_missing_modality(answer))


@covers(check_missing_modality)
@given(numpy_scalars())
def test_check_missing_modality_accepts_any_numeric_type(as_type):
    result = check_missing_modality(lambda *args: as_type(_correct_without(*args)))
    assert result.passed, result.message


# ----------------------------------------------------------------------------- comparison
accuracies = st.floats(0, 1)


@covers(check_comparison)
@given(not_an_accuracy.filter(lambda v: v is not None), st.dictionaries(
    st.text(min_size=1, max_size=5), accuracies, min_size=1, max_size=3))
def test_check_comparison_never_passes_what_is_not_an_accuracy(ours, baselines):
    assert not_passed(check_comparison(ours, {name: acc * 0 for name, acc in baselines.items()}))


@covers(check_comparison)
@given(accuracies, not_an_accuracy)
def test_check_comparison_never_passes_a_bad_baseline(ours, baseline):
    assert not_passed(check_comparison(ours, {"late fusion": 0.0, "broken": baseline}))


@covers(check_comparison)
@given(st.one_of(st.none(), st.just({}), st.just([0.5]), st.just("0.5"), st.just(0.5)))
def test_check_comparison_needs_baselines(baselines):
    assert not_passed(check_comparison(0.9, baselines))


@covers(check_comparison)
@given(accuracies, st.lists(accuracies, min_size=1, max_size=4), numpy_scalars())
def test_check_comparison_passes_exactly_when_every_baseline_is_beaten(ours, others, as_type):
    baselines = {f"baseline {i}": as_type(acc) for i, acc in enumerate(others)}
    result = check_comparison(as_type(ours), baselines)
    assert result.passed is (float(np.float32(ours) if as_type is np.float32 else ours)
                             > max(float(v) for v in baselines.values()))


# ----------------------------------------------------------------------------- exercise 2
class _Fake(nn.Module):
    """A model whose output is one of the wrong kinds a learner's model may give."""

    def __init__(self, input_dims, num_classes, kind):
        super().__init__()
        self.kind, self.num_classes = kind, num_classes
        self.linear = nn.Linear(sum(input_dims.values()), num_classes)
        self.calls = 0

    def forward(self, features):
        self.calls += 1
        x = torch.cat([features[m] for m in sorted(features)], dim=1)
        batch, classes = len(x), self.num_classes
        good = self.linear(x)
        return {
            "noise": torch.randn(batch, classes),  # ignores its inputs
            "noise_plus": good + torch.randn(batch, classes),
            "counter": good * 0 + self.calls,  # changes per call, ignores inputs
            "integer": good.round().long(),
            "complex": good.to(torch.complex64),
            "bool": good > 0,
            "nan": good * float("nan"),
            "inf": good / 0,
            "transposed": good.T,
            "one_row": good[:1],
            "flat": good.flatten(),
            "tuple": (good, good),
            "none": None,
            "list": good.tolist(),
            "numpy": good.detach().numpy(),
            "only_image": self.linear(x * 0) + features["image"].sum(1, keepdim=True),
            "constant": good * 0,
            "dropout_always": nn.functional.dropout(good, 0.5, training=True),
        }[self.kind]


FAKE_KINDS = ["noise", "noise_plus", "counter", "integer", "complex", "bool", "nan", "inf",
              "transposed", "one_row", "flat", "tuple", "none", "list", "numpy",
              "only_image", "constant", "dropout_always"]


@covers(check_model)
@pytest.mark.parametrize("kind", FAKE_KINDS)
def test_check_model_never_passes_a_wrong_model(kind):
    assert not_passed(check_model(lambda dims, classes: _Fake(dims, classes, kind)))


@covers(check_model)
@given(st.one_of(errors.map(_raises), st.sampled_from([
    lambda dims, classes: None, lambda dims, classes: nn.Identity(),
    lambda dims, classes: nn.Linear(39, classes), lambda dims, classes: "model",
    lambda dims, classes: nn.Linear(10**4, 10**3)]), st.sampled_from([None, 3, nn.Linear(2, 2)])))
def test_check_model_never_passes_a_wrong_builder(build_model):
    assert not_passed(check_model(build_model))


class _Concat(nn.Module):
    def __init__(self, input_dims, num_classes, dtype):
        super().__init__()
        self.names = sorted(input_dims)
        self.linear = nn.Linear(sum(input_dims.values()), num_classes).to(dtype)

    def forward(self, features):
        x = torch.cat([features[m] for m in self.names], dim=1)
        return self.linear(x.to(self.linear.weight.dtype))


@covers(check_model)
@given(st.sampled_from([torch.float32, torch.float64]))
def test_check_model_passes_a_model_of_every_modality(dtype):
    result = check_model(lambda dims, classes: _Concat(dims, classes, dtype))
    assert result.passed, result.message


# ----------------------------------------------------------------------------- exercise 1
@pytest.fixture(scope="module")
def clinic_pair():
    from course_lib.data.clinic import load_clinic
    return load_clinic("train", n_patients=40, seed=3), load_clinic("test", n_patients=16, seed=3)


def _features(data):
    return {"image": data.images.flatten(1)[:, :64].float(),
            "text": torch.randn(len(data), 5), "audio": data.waveforms[:, :32].float()}


WRONG_TENSORS = {
    "none": lambda tr, te: None,
    "one_dict": lambda tr, te: _features(tr),
    "three": lambda tr, te: (_features(tr), _features(te), None),
    "missing_key": lambda tr, te: tuple({k: v for k, v in _features(d).items() if k != "text"}
                                        for d in (tr, te)),
    "nan": lambda tr, te: tuple(dict(_features(d), audio=_features(d)["audio"] * float("nan"))
                                for d in (tr, te)),
    "float64": lambda tr, te: tuple({k: v.double() for k, v in _features(d).items()}
                                    for d in (tr, te)),
    "numpy": lambda tr, te: tuple({k: v.numpy() for k, v in _features(d).items()}
                                  for d in (tr, te)),
    "lists": lambda tr, te: tuple({k: v.tolist() for k, v in _features(d).items()}
                                  for d in (tr, te)),
    "constant": lambda tr, te: tuple({k: torch.ones(len(d), 3) for k in ("image", "text", "audio")}
                                     for d in (tr, te)),
    "wrong_rows": lambda tr, te: (_features(tr), _features(tr)),
    "random_text": lambda tr, te: (_features(tr), _features(te)),  # depends on who is in split
}


@covers(check_tensors)
@pytest.mark.parametrize("kind", sorted(WRONG_TENSORS))
def test_check_tensors_never_passes_wrong_features(clinic_pair, kind):
    assert not_passed(check_tensors(WRONG_TENSORS[kind], *clinic_pair))


@covers(check_tensors)
@given(errors)
def test_check_tensors_turns_any_error_into_a_hint(clinic_pair, error):
    assert not_passed(check_tensors(_raises(error), *clinic_pair))


# ----------------------------------------------------------------------------- exercise 3
def _separable():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % len(checks.CLASS_NAMES)
    features = {m: torch.randn(40, 4, generator=generator) for m in ("image", "text", "audio")}
    return features, labels


def _build(dims, classes):
    return _Concat(dims, classes, torch.float32)


@covers(check_training)
@given(st.one_of(
    errors.map(_raises),
    st.sampled_from([None, "done", 3.0, [], [1.0], [float("nan"), 0.1], [1.0, float("inf")],
                     [1.0, 0.9, 0.95], ["a", "b"]]).map(lambda h: lambda *args: h),
    st.lists(st.floats(0, 3), min_size=2, max_size=20).map(
        lambda losses: lambda *args: sorted(losses, reverse=True)),  # a made-up falling loss
))
def test_check_training_never_passes_a_model_that_did_not_learn(train_model):
    features, labels = _separable()
    assert not_passed(check_training(train_model, _build, features, labels))


@covers(check_training)
@given(st.sampled_from([None, "features", 3]))
def test_check_training_needs_training_features(train_features):
    _, labels = _separable()
    assert not_passed(check_training(lambda *a: [1.0, 0.1], _build, train_features, labels))


# ----------------------------------------------------------------------------- the tiers
def _tier_case(n=64):
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=generator)
    features = {m: torch.randn(n, 2, generator=generator) for m in ("image", "text", "audio")}
    return features, labels


not_a_model = st.one_of(st.sampled_from([None, "model", 3, 0.9, nn.Linear(2, 2), nn.Identity()]),
                        st.sampled_from(FAKE_KINDS).map(
                            lambda kind: _Fake({"image": 2, "text": 2, "audio": 2}, 4, kind)))


@covers(checks.check_stretch, checks.check_robust)
@given(not_a_model)
def test_stretch_and_robust_never_pass_what_is_not_a_working_model(model):
    features, labels = _tier_case()
    assert not_passed(checks.check_stretch(model, features, labels))
    assert not_passed(checks.check_robust(model, features, labels))


@covers(checks.check_core)
@given(not_a_model)
def test_core_never_passes_what_is_not_a_working_model(model):
    features, labels = _tier_case()
    assert not_passed(checks.check_core(model, features, labels, features, labels))


@covers(checks.check_stretch, checks.check_robust, checks.check_core)
@given(st.sampled_from([None, {}, "features", {"image": [1, 2]}, torch.zeros(4, 2)]),
       st.sampled_from([None, "labels", torch.zeros(4), torch.zeros(64, 2).long()]))
def test_the_tiers_need_features_and_labels(features, labels):
    model = _Concat({"image": 2, "text": 2, "audio": 2}, 4, torch.float32)
    good_features, good_labels = _tier_case()
    assert not_passed(checks.check_stretch(model, features, good_labels))
    assert not_passed(checks.check_robust(model, good_features, labels))
    assert not_passed(checks.check_core(model, features, good_labels, good_features, labels))


@covers(checks.check_honest)
@given(st.one_of(errors.map(_raises), st.sampled_from([
    lambda *args: None, lambda *args: "a", lambda *args: ("a", {"a": 0.5}),
    lambda *args: ("a", {"a": float("nan"), "b": 0.1}), lambda *args: ("b", {"a": 0.9, "b": 0.1}),
    lambda *args: ("a", {"a": 1.5, "b": 0.1}), lambda *args: ("a", [0.5, 0.4])])))
def test_check_honest_never_passes_a_wrong_choice(choose_recipe):
    features, labels = _tier_case()
    other_features, other_labels = _tier_case(48)
    other_features = {m: x + 10 for m, x in other_features.items()}
    recipes = {"a": lambda dims, classes: None, "b": lambda dims, classes: None}
    assert not_passed(checks.check_honest(choose_recipe, recipes, features, labels,
                                          other_features, other_labels))


@covers(checks.train_baselines)
@given(st.sampled_from(["features", "labels", "rows", "seed", "range"]))
def test_train_baselines_rejects_bad_arguments_naming_them(which):
    features, labels = _tier_case(8)
    arguments = {"features": ({"image": [1.0]}, labels, 0),
                 "labels": (features, labels.float(), 0),
                 "rows": (dict(features, text=features["text"][:3]), labels, 0),
                 "seed": (features, labels, -1), "range": (features, labels + 7, 0)}[which]
    with pytest.raises(ValueError) as raised:
        checks.train_baselines(arguments[0], arguments[1], seed=arguments[2])
    assert {"features": "train_features", "rows": "train_features", "labels": "train_labels",
            "range": "train_labels", "seed": "seed"}[which] in str(raised.value)
