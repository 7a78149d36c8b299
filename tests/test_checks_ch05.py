"""Chapter 05's checkers on right answers, stubs, crashes, wrong types, NaN, numpy and mistakes.

The expected values come from hand formulas (log of the mean of softmax probabilities; drop
rates p (1 - p) + p^2 / 2 and (1 - p)^2), which are checked here against the library itself.
"""

import numpy as np
import pytest
import torch
from checker_verdicts import stub, verdict_of

from course_lib.checks import ch05
from course_lib.fusion import LateFusion, modality_dropout


# ----------------------------------------------------------------------------- exercise 1
def late_right(logits):
    probabilities = [value.softmax(dim=-1) for value in logits.values()]
    return (sum(probabilities) / len(probabilities)).log()


def test_the_reference_is_the_hand_formula_and_the_library():
    logits = {"image": torch.tensor([[2.0, 0.0]]), "audio": torch.tensor([[0.0, 0.0]])}
    p_image = torch.tensor([2.0, 0.0]).exp() / torch.tensor([2.0, 0.0]).exp().sum()
    by_hand = ((p_image + torch.tensor([0.5, 0.5])) / 2).log()
    torch.testing.assert_close(ch05.reference_late_fusion(logits)[0], by_hand)
    model = LateFusion({"image": 1, "audio": 1}, 2, combine="mean")
    torch.testing.assert_close(model.combine_predictions(logits), late_right(logits))


def averaged_logits(logits):
    return (sum(logits.values()) / len(logits)).log_softmax(dim=-1)


def product_of_experts(logits):
    return sum(value.log_softmax(dim=-1) for value in logits.values())


def probabilities_only(logits):
    return late_right(logits).exp()


def batch_softmax(logits):
    return (sum(value.softmax(dim=0) for value in logits.values()) / len(logits)).log()


def hard_coded(logits):
    return ((logits["image"].softmax(-1) + logits["audio"].softmax(-1)) / 2).log()


@pytest.mark.parametrize("answer", [
    late_right,
    lambda logits: torch.logsumexp(torch.stack([v.log_softmax(-1) for v in logits.values()]),
                                   dim=0) - torch.log(torch.tensor(float(len(logits)))),
])
def test_late_right_answers_pass(answer, capsys):
    verdict_of(ch05.check_late_fusion(answer), capsys, True, "1, 2 and 3 modalities")


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet", "NotImplementedError"]),
    (lambda logits: 1 / 0, ["ZeroDivisionError", "line"]),
    (lambda logits: late_right(logits)[:, :2], ["has shape", "expected (6, 4)"]),
    (lambda logits: late_right(logits) * float("nan"), ["NaN"]),
    (lambda logits: late_right(logits).numpy(),
     ["is a numpy array (numpy.ndarray of shape (6, 4)), but a torch.Tensor is expected",
      "torch.from_numpy(array) or torch.as_tensor(array)"]),
    (lambda logits: None, ["is None, but a torch.Tensor is expected",
                           "end with a `return` line?"]),
    (averaged_logits, ["averaged the logits", "*probabilities*"]),
    (product_of_experts, ["product of experts"]),
    (probabilities_only, ["return their log"]),
    (batch_softmax, ["batch axis"]),
    (hard_coded, ["every key of the dict", "KeyError"]),
    (lambda logits: torch.zeros(len(next(iter(logits.values()))), 4), ["row", "expected"]),
])
def test_late_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch05.check_late_fusion(answer), capsys, False, *phrases)


def test_late_stub_says_not_implemented_yet(capsys):
    assert ch05.check_late_fusion(stub).status == "not-implemented"
    capsys.readouterr()


# ----------------------------------------------------------------------------- exercise 2
def drop_right(features, p, generator=None, training=True):
    if not training:
        return dict(features)
    names = list(features)
    batch = len(features[names[0]])
    keep = torch.rand(batch, len(names), generator=generator) >= p
    lost = ~keep.any(dim=1)
    rescued = torch.randint(len(names), (int(lost.sum()),), generator=generator)
    keep[lost.nonzero()[:, 0], rescued] = True
    out = {}
    for column, name in enumerate(names):
        mask = keep[:, column].reshape(-1, *[1] * (features[name].ndim - 1))
        out[name] = torch.where(mask, features[name], torch.zeros_like(features[name]))
    return out


def drop_by_library(features, p, generator=None, training=True):
    """A learner who reuses the chapter's modality_dropout groups and zero-fills (p < 1)."""
    if not training:
        return dict(features)
    if p >= 1:
        return drop_right(features, p, generator, training)
    out = {name: torch.zeros_like(value) for name, value in features.items()}
    for rows, kept in modality_dropout(features, p, generator):
        for name, value in kept.items():
            out[name][rows] = value
    return out


@pytest.mark.parametrize("p", [0.3, 0.6])
def test_the_expected_rates_match_the_library(p):
    batch = 20_000
    features = {"image": torch.ones(batch, 1), "audio": torch.ones(batch, 1)}
    kept = torch.zeros(batch, 2, dtype=torch.bool)
    for rows, present in modality_dropout(features, p, torch.Generator().manual_seed(0)):
        for column, name in enumerate(features):
            kept[rows, column] = name in present
    rates = ch05.expected_rates(p)
    assert abs((~kept[:, 0]).float().mean().item() - rates["dropped"]) < 0.015
    assert abs(kept.all(dim=1).float().mean().item() - rates["both kept"]) < 0.015
    assert rates["dropped"] == pytest.approx(p * (1 - p) + p * p / 2)


@pytest.mark.parametrize("answer", [drop_right, drop_by_library])
def test_dropout_right_answers_pass(answer, capsys):
    verdict_of(ch05.check_modality_dropout(answer), capsys, True, "0.375", "nothing at evaluation")


def drops_at_eval(features, p, generator=None, training=True):
    return drop_right(features, p, generator, True)


def drops_both_at_once(features, p, generator=None, training=True):
    if not training:
        return dict(features)
    batch = len(next(iter(features.values())))
    gone = torch.rand(batch, generator=generator) < p
    return {name: torch.where(gone.reshape(-1, *[1] * (v.ndim - 1)), torch.zeros_like(v), v)
            for name, v in features.items()}


def no_rescue(features, p, generator=None, training=True):
    if not training:
        return dict(features)
    out = {}
    for name, value in features.items():
        keep = torch.rand(len(value), generator=generator) >= p
        out[name] = value * keep.reshape(-1, *[1] * (value.ndim - 1))
    return out


def one_mask_per_batch(features, p, generator=None, training=True):
    if not training:
        return dict(features)
    names = list(features)
    keep = torch.rand(len(names), generator=generator) >= p
    if not keep.any():
        keep[torch.randint(len(names), (1,), generator=generator)] = True
    return {name: value if keep[i] else torch.zeros_like(value)
            for i, (name, value) in enumerate(features.items())}


def keep_probability(features, p, generator=None, training=True):
    return drop_right(features, 1 - p, generator, training) if training else dict(features)


def always_rescue_first(features, p, generator=None, training=True):
    if not training:
        return dict(features)
    names = list(features)
    batch = len(features[names[0]])
    keep = torch.rand(batch, len(names), generator=generator) >= p
    keep[~keep.any(dim=1), 0] = True
    return {name: value * keep[:, i].reshape(-1, *[1] * (value.ndim - 1))
            for i, (name, value) in enumerate(features.items())}


def inverted_dropout(features, p, generator=None, training=True):
    out = drop_right(features, p, generator, training)
    return {name: value / (1 - p) if training and p < 1 else value for name, value in out.items()}


def global_generator(features, p, generator=None, training=True):
    return drop_right(features, p, None, training)


def in_place(features, p, generator=None, training=True):
    out = drop_right(features, p, generator, training)
    for name in features:
        features[name].mul_((out[name] != 0).float())
    return features


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet"]),
    (lambda features, p, generator=None, training=True: [][1], ["IndexError"]),
    (lambda f, p, g=None, training=True: {k: v[:1] for k, v in f.items()}, ["has shape"]),
    (lambda f, p, g=None, training=True: {k: v * float("nan") for k, v in f.items()}, ["NaN"]),
    (lambda f, p, g=None, training=True: {k: v.numpy() for k, v in f.items()},
     ["is a numpy array (numpy.ndarray of shape (8, 1, 6)), but a torch.Tensor is expected",
      "torch.from_numpy(array) or torch.as_tensor(array)"]),
    (lambda f, p, g=None, training=True: np.zeros(3), ["numpy array"]),
    (lambda f, p, g=None, training=True: {"image": f["image"]}, ["returned the keys"]),
    (drops_at_eval, ["training=False", "at evaluation return the inputs unchanged"]),
    (drops_both_at_once, ["dropped every modality", "At least one modality must stay"]),
    (no_rescue, ["dropped every modality"]),
    (one_mask_per_batch, ["the same modalities for every example"]),
    (keep_probability, ["not of keeping it"]),
    (always_rescue_first, ["lopsided", "chosen at random"]),
    (inverted_dropout, ["(inverted) dropout"]),
    (global_generator, ["generator=generator"]),
    (in_place, ["in place"]),
])
def test_dropout_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch05.check_modality_dropout(answer), capsys, False, *phrases)
