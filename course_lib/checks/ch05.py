"""Checkers for chapter 05 (fusion strategies): a late-fusion combiner and modality dropout.

Each checker calls the learner's function on inputs it controls, compares with the library
(:class:`course_lib.fusion.LateFusion` with ``combine="mean"``; the drop rule of
:func:`course_lib.fusion.modality_dropout`), recognises the typical mistakes of the exercise
(averaging logits instead of probabilities, dropping every modality of an example, dropping at
evaluation, ...) and prints "Well done!" or a precise hint. It never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from course_lib._validation import ArgumentTypeError, check_number, check_tensor, describe
from course_lib.checks._common import (
    CheckResult,
    Failed,
    call_learner,
    close,
    guarded,
    learner_result,
    verdict,
)
from course_lib.fusion import LateFusion

NUM_CLASSES = 4


_ADVICE = ("Use torch operations (tensor.softmax, torch.where, ...) so that the result "
           "stays a tensor the model can train through.")


def _tensor(value: object, who: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The learner's result as a tensor of ``shape``, or a precise :class:`Failed`."""
    return learner_result(value, who, shape, _ADVICE, floating=True,
                          reject="non-finite", detach=False)


def _key_hint(error: Exception) -> str:
    if isinstance(error, KeyError):
        return ("Use every key of the dict you are given (loop over logits.items()), not fixed "
                "names: the check also passes one modality, and three.")
    return "Read the error, fix the line, and run the check again."


# ----------------------------------------------------------------------------- exercise 1
def _logit_cases() -> list[dict[str, torch.Tensor]]:
    """Batches of per-modality logits (B, C): two modalities, batch 1, one and three."""
    generator = torch.Generator().manual_seed(5)

    def logits(batch: int) -> torch.Tensor:
        return 2.5 * torch.randn(batch, NUM_CLASSES, generator=generator)

    return [
        {"image": logits(6), "audio": logits(6)},
        {"image": logits(1), "audio": logits(1)},  # batch 1
        {"audio": logits(3)},  # one modality: its own log-probabilities
        {"image": logits(5), "audio": logits(5), "text": logits(5)},
        # a confident image model against an unsure audio model
        {"image": torch.tensor([[6.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 6.0]]),
         "audio": torch.tensor([[0.0, 0.5, 0.0, 0.0], [0.3, 0.0, 0.0, 0.0]])},
    ]


def reference_late_fusion(logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The library's decision-level mean: ``LateFusion(combine="mean")`` on these logits.

    Shape: logits maps each modality to (B, C) -> (B, C) log of the mean probabilities.
    """
    if not isinstance(logits, Mapping) or not logits:
        raise ArgumentTypeError(f"logits must be a non-empty dict of modality -> (B, C) logits, "
                                f"got {describe(logits)}")
    dims: dict = {}
    logits = {name: check_tensor(f"logits[{name!r}]", value, shape=("B", "C"), finite=True,
                                 dims=dims) for name, value in logits.items()}
    widths = {name: 1 for name in logits}
    model = LateFusion(widths, num_classes=next(iter(logits.values())).shape[-1], combine="mean")
    with torch.no_grad():
        return model.combine_predictions(dict(logits))


def _late_variants(logits: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    stacked = torch.stack(list(logits.values()))  # (M, B, C)
    probabilities = stacked.softmax(dim=-1)
    return {
        "averaged logits": stacked.mean(dim=0).log_softmax(dim=-1),
        "averaged logits, no softmax": stacked.mean(dim=0),
        "probabilities, not log": probabilities.mean(dim=0),
        "product of experts": stacked.log_softmax(dim=-1).sum(dim=0),
        "mean of log-probabilities": stacked.log_softmax(dim=-1).mean(dim=0),
        "normalised product": stacked.log_softmax(dim=-1).sum(dim=0).log_softmax(dim=-1),
        "softmax over the batch": stacked.softmax(dim=1).mean(dim=0).log(),
        "summed probabilities": probabilities.sum(dim=0).log(),
    }


_LATE_HINTS = {
    "averaged logits": (
        "you averaged the logits, then took the softmax. The chapter's late fusion averages the "
        "modalities' *probabilities*: softmax each modality's logits first, average, then log."),
    "averaged logits, no softmax": (
        "you averaged the raw logits. Turn each modality's logits into probabilities "
        "(softmax over the classes), average them, and return the log of the average."),
    "probabilities, not log": (
        "you returned the averaged probabilities; return their log, like LateFusion(combine="
        "\"mean\"), whose output goes into a negative log-likelihood."),
    "product of experts": (
        "you added log-probabilities (a product of experts, exercise 2 of this chapter). Late "
        "fusion here averages the probabilities: log(mean_m softmax(logits_m))."),
    "mean of log-probabilities": (
        "you averaged log-probabilities (a geometric mean). Average the probabilities "
        "themselves, then take the log."),
    "normalised product": (
        "you combined log-probabilities (a normalised product of experts). Average the "
        "probabilities themselves, then take the log."),
    "softmax over the batch": (
        "your softmax runs over the batch axis: each example's probabilities must sum to 1 over "
        "the classes, softmax(dim=-1)."),
    "summed probabilities": (
        "you summed the probabilities; divide by the number of modalities present (their mean "
        "sums to 1 over the classes)."),
}


@guarded
def check_late_fusion(late_fusion_mean: Callable[[dict[str, torch.Tensor]], torch.Tensor]
                      ) -> CheckResult:
    """Exercise 1: ``late_fusion_mean(logits) -> (B, C)`` log of the mean of probabilities.

    ``logits`` maps each present modality to its model's logits ``(B, C)``. Compared with
    ``LateFusion(combine="mean").combine_predictions`` on two modalities, a batch of 1, a
    single modality and three; typical mistakes (averaged logits, a product of experts,
    probabilities without the log, a softmax over the batch) are named.
    """
    for index, case in enumerate(_logit_cases()):
        shapes = {name: tuple(value.shape) for name, value in case.items()}
        given = {name: value.clone() for name, value in case.items()}
        got = call_learner(late_fusion_mean, given, exercise="check_late_fusion",
                           hint=_key_hint)
        batch = len(next(iter(case.values())))
        got = _tensor(got, f"late_fusion_mean({shapes})", (batch, NUM_CLASSES))
        expected = reference_late_fusion(case)
        if close(got, expected, atol=1e-4):
            continue
        for mistake, value in _late_variants(case).items():
            if close(got, value, atol=1e-4):
                raise Failed(f"Not yet: late_fusion_mean({shapes}) differs from the chapter's "
                             f"late fusion. Hint: {_LATE_HINTS[mistake]}")
        if len(case) == 1:
            raise Failed(f"Not yet: with one modality present, {shapes}, the mean is that "
                         f"modality's own log-probabilities, log_softmax(logits, dim=-1).")
        row = int((got.double() - expected.double()).abs().sum(dim=-1).argmax())
        raise Failed(f"Not yet: late_fusion_mean({shapes}) row {row} is "
                     f"{[round(v, 3) for v in got[row].tolist()]}, expected "
                     f"{[round(v, 3) for v in expected[row].tolist()]} (case {index + 1}). "
                     f"Hint: softmax each modality's logits over the classes, average the "
                     f"probabilities over the modalities, return the log.")
    example = _logit_cases()[-1]
    fused = reference_late_fusion(example).exp()[0]
    return verdict(True, f"Well done! late_fusion_mean agrees with LateFusion(combine=\"mean\") "
                         f"on 1, 2 and 3 modalities. A confident image model (P = "
                         f"{example['image'].softmax(-1)[0, 0]:.3f} for class 0) and an unsure "
                         f"audio model average to {fused[0]:.3f}: the sure verdict still wins.")


# ----------------------------------------------------------------------------- exercise 2
def _features(batch: int, generator: torch.Generator, names: tuple[str, ...] = ("image", "audio")
              ) -> dict[str, torch.Tensor]:
    """Inputs with no zero entry, so a dropped row (all zeros) is unmistakable."""
    shapes = {"image": (1, 6), "audio": (5, 4), "text": (3,)}
    features = {}
    for name in names:
        values = torch.rand(batch, *shapes[name], generator=generator) + 0.5
        signs = torch.randint(0, 2, values.shape, generator=generator) * 2 - 1
        features[name] = values * signs
    return features


def expected_rates(p: float) -> dict[str, float]:
    """Two modalities, each dropped with probability p, an example that lost both gets one back
    at random: P(a modality is dropped) = p (1 - p) + p^2 / 2, P(both kept) = (1 - p)^2."""
    p = check_number("p", p, minimum=0, maximum=1)
    return {"dropped": p * (1 - p) + p * p / 2, "both kept": (1 - p) ** 2}


def _kept(learner: Callable, features: dict[str, torch.Tensor], p: float, seed: int,
          training: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Call the learner and read back which (example, modality) it kept: (B, M) bool."""
    call = f"drop_modalities(features, p={p}, generator=..., training={training})"
    given = {name: value.clone() for name, value in features.items()}
    got = call_learner(learner, given, p, torch.Generator().manual_seed(seed), training,
                       exercise="check_modality_dropout", name="drop_modalities",
                       hint=_key_hint)
    if any(not torch.equal(given[name], features[name]) for name in features):
        raise Failed(f"Not yet: {call} changed the input tensors in place. Build new tensors "
                     f"(torch.where, or multiply by a mask) instead of writing zeros into the "
                     f"inputs.")
    if hasattr(got, "__array__") and not isinstance(got, (dict, torch.Tensor)):
        raise Failed(f"Not yet: {call} returned a numpy array; return a dict of torch tensors, "
                     f"one per modality.")
    if not isinstance(got, Mapping):
        raise Failed(f"Not yet: {call} returned {type(got).__name__}; return a dict with the "
                     f"same keys as features, modality -> tensor of the same shape.")
    if set(got) != set(features):
        raise Failed(f"Not yet: {call} returned the keys {sorted(got)}, expected "
                     f"{sorted(features)}: keep every modality, with zeros where it is dropped.")
    batch = len(next(iter(features.values())))
    kept = torch.zeros(batch, len(features), dtype=torch.bool)
    out = {}
    for column, (name, value) in enumerate(features.items()):
        out[name] = mine = _tensor(got[name], f"{call}[{name!r}]", tuple(value.shape))
        unchanged = (mine == value).flatten(1).all(dim=1)
        zero = (mine == 0).flatten(1).all(dim=1)
        odd = ~(unchanged | zero)
        if odd.any():
            row = int(odd.nonzero()[0])
            ratio = (mine[row] / value[row]).flatten()
            scaled = bool(torch.allclose(ratio, ratio[0].expand_as(ratio))) and ratio[0] > 1
            hint = (f" It is scaled by {ratio[0]:.3f}: that is ordinary (inverted) dropout. "
                    f"Modality dropout replaces the whole modality by zeros and leaves the "
                    f"others as they are." if scaled else
                    " Each modality of an example is either kept as it is or replaced by "
                    "zeros, the whole modality at once.")
            raise Failed(f"Not yet: {call}[{name!r}] row {row} is neither unchanged nor all "
                         f"zeros.{hint}")
        kept[:, column] = unchanged
    return kept, out


def _check_statistics(learner: Callable, p: float, batch: int = 4000) -> None:
    features = _features(batch, torch.Generator().manual_seed(11))
    kept, _ = _kept(learner, features, p, seed=0)
    call = f"drop_modalities(features of {batch} examples, p={p})"
    lost = ~kept.any(dim=1)
    if lost.any():
        raise Failed(f"Not yet: {call} dropped every modality of {int(lost.sum())} examples "
                     f"(e.g. example {int(lost.nonzero()[0])}). At least one modality must stay: "
                     f"give an example that lost all of them one modality back, chosen at "
                     f"random.")
    if batch > 1 and 0 < p and (kept == kept[0]).all():
        raise Failed(f"Not yet: {call} dropped the same modalities for every example of the "
                     f"batch. Draw the mask per example: torch.rand(B, M, generator=generator) "
                     f"< p, one number per example and modality.")
    expected = expected_rates(p)
    tolerance = {key: 5 * math.sqrt(max(rate * (1 - rate), 1e-4) / batch)
                 for key, rate in expected.items()}
    dropped = (~kept).float().mean(dim=0)
    both = kept.all(dim=1).float().mean().item()
    for column, name in enumerate(features):
        rate = dropped[column].item()
        if abs(rate - expected["dropped"]) > tolerance["dropped"]:
            other = dropped[1 - column].item()
            if abs(rate + other - 2 * expected["dropped"]) <= 2 * tolerance["dropped"]:
                hint = ("the drops are lopsided between the modalities: when an example lost "
                        "both, give it back one modality chosen at random (not always the same).")
            elif abs(rate - (1 - p)) < tolerance["dropped"] + 0.03:
                hint = "you drop with probability 1 - p: p is the probability of dropping."
            else:
                hint = ("drop each modality of each example independently with probability p "
                        "(torch.rand(B, M) < p), then rescue the examples that lost all.")
            raise Failed(f"Not yet: {call} dropped {name!r} in {rate:.3f} of the examples, "
                         f"expected {expected['dropped']:.3f} +- {tolerance['dropped']:.3f} "
                         f"(p (1 - p) + p^2 / 2 with two modalities). Hint: {hint}")
    if abs(both - expected["both kept"]) > tolerance["both kept"]:
        raise Failed(f"Not yet: {call} kept both modalities in {both:.3f} of the examples, "
                     f"expected (1 - p)^2 = {expected['both kept']:.3f}. Hint: draw one random "
                     f"number per example *and modality*, not one per example.")


@guarded
def check_modality_dropout(drop_modalities: Callable[..., dict[str, torch.Tensor]]
                           ) -> CheckResult:
    """Exercise 2: ``drop_modalities(features, p, generator, training) -> dict``.

    In training, each modality of each example is replaced by zeros with probability ``p``,
    independently; an example that lost every modality gets one back, chosen at random; in
    evaluation (``training=False``) nothing is dropped. Checked on 4,000 examples with a fixed
    generator (drop rates against p (1 - p) + p^2 / 2, both kept against (1 - p)^2, exact
    zero or unchanged rows), p = 0 and p = 1, a batch of 1, three modalities, evaluation mode
    and reproducibility with a seeded generator.
    """
    small = _features(8, torch.Generator().manual_seed(3))
    for p in (0.5, 1.0):  # evaluation: nothing dropped, whatever p
        kept, _ = _kept(drop_modalities, small, p, seed=1, training=False)
        if not kept.all():
            raise Failed(f"Not yet: with training=False (evaluation) and p={p}, drop_modalities "
                         f"dropped {int((~kept).sum())} modality rows. Modality dropout is a "
                         f"training-time regulariser: at evaluation return the inputs unchanged.")
    kept, _ = _kept(drop_modalities, small, 0.0, seed=1)
    if not kept.all():
        raise Failed("Not yet: with p=0 drop_modalities dropped something; p is the probability "
                     "of dropping a modality (not of keeping it), and 0 means never.")
    for p in (0.3, 0.6, 1.0):
        _check_statistics(drop_modalities, p)
    ones, _ = _kept(drop_modalities, _features(4000, torch.Generator().manual_seed(2)), 1.0, 0)
    if not (ones.sum(dim=1) == 1).all():  # pragma: no cover - implied by the statistics
        raise Failed("Not yet: with p=1 every example should keep exactly one modality.")
    single = _features(1, torch.Generator().manual_seed(4))
    for seed in range(6):  # a batch of 1: a valid pattern every time
        kept, _ = _kept(drop_modalities, single, 0.7, seed=seed)
        if not kept.any():
            raise Failed("Not yet: with a batch of 1 drop_modalities dropped every modality; "
                         "at least one must stay.")
    three = _features(500, torch.Generator().manual_seed(6), ("image", "audio", "text"))
    kept, _ = _kept(drop_modalities, three, 0.8, seed=0)
    if not kept.any(dim=1).all():
        raise Failed("Not yet: with three modalities and p=0.8 some examples lost all three; "
                     "rescue every such example with one modality chosen at random.")
    first = _kept(drop_modalities, small, 0.5, seed=7)[0]
    again = _kept(drop_modalities, small, 0.5, seed=7)[0]
    if not torch.equal(first, again):
        raise Failed("Not yet: two calls with generators seeded alike dropped different rows. "
                     "Pass generator=generator to every random draw (torch.rand, torch.randint) "
                     "so that training is reproducible.")
    rate = expected_rates(0.5)["dropped"]
    return verdict(True, f"Well done! drop_modalities drops each modality per example (with "
                         f"p = 0.5 each is missing from {rate:.3f} of the examples, both kept in "
                         f"{expected_rates(0.5)['both kept']:.2f}), never all of them, and "
                         f"nothing at evaluation.")
