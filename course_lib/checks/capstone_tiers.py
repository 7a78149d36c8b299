"""The capstone's final checks: the comparison with reference baselines, four tiers, and honesty.

Chapter 08 asks for a fusion model and grades it in tiers, each with its own checker:

- **core** (:func:`check_core`): beat decision-level late fusion on the test patients, beyond
  noise (a paired bootstrap on the same patients). The baselines are trained here by the
  course's reference trainer (:func:`train_baselines`, ``course_lib.train.train`` with the
  reference recipe), never by the learner's own training function, so an under-trained
  learner cannot "win" against equally under-trained baselines.
- **stretch** (:func:`check_stretch`): a test accuracy of at least
  :data:`STRETCH_MIN_ACCURACY` (0.90), below the all-modality Bayes ceiling 0.9264 and above
  what the chapter's first recipe (a two-layer early fusion) reaches.
- **robust** (:func:`check_robust`): with the film missing (and every feature built from
  it), at least :data:`ROBUST_MIN_ACCURACY`, the best any model can reach from the report
  alone (0.6828): without its film the model must still read the report and the recording
  together. (No model can pass the text + audio ceiling, 0.7600, so a threshold of 0.80
  without the film could never be met.) A model that leans on its film, such as one given
  a film-by-report feature and never trained without it, falls below; modality dropout in
  training keeps it above.
- **honest** (:func:`check_honest`): the recipe is chosen on validation patients carved
  from the training split. The checker runs the learner's selection function itself with
  the test split withheld: every test object in the learner's namespace is replaced, for
  the duration of the call, by a stand-in that records any use, so a selection that reads
  the test labels (or test features) is caught, and so is one that scores the candidates
  on their own training patients.

Every check judges the model itself (eval mode, the same scores twice in a row, finite
float scores), never a number the learner computed, and calls an accuracy above a Bayes
ceiling by more than two standard errors what it is: a leak.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from course_lib.checks._capstone_common import (
    MODALITIES,
    as_accuracy,
    capstone_check,
    check_no_leak,
    correct_flags,
    features_dict,
    labels_of,
    shape_of,
)
from course_lib.checks._common import CheckResult, Failed, verdict
from course_lib.data.clinic import CLASS_NAMES, DOCUMENTED_CEILINGS
from course_lib.evaluation import paired_bootstrap, wilson_estimate

STRETCH_MIN_ACCURACY = 0.90
ROBUST_MIN_ACCURACY = DOCUMENTED_CEILINGS["text"]  # 0.6828, the report alone
REFERENCE_RECIPE = {"hidden_dim": 128, "dropout": 0.5, "epochs": 40, "lr": 2e-3,
                    "weight_decay": 0.05, "batch_size": 64}
BASELINE_CEILINGS = {"image alone": "image", "text alone": "text", "audio alone": "audio",
                     "late fusion": "decision-level"}


def train_baselines(train_features: Mapping[str, torch.Tensor], train_labels: torch.Tensor, *,
                    device: torch.device | str | None = None, seed: int = 0,
                    include_early: bool = False) -> dict[str, nn.Module]:
    """The final comparison's baselines, trained by the course's reference trainer.

    One ``EarlyFusion`` per record ("image alone", "text alone", "audio alone") and
    decision-level late fusion ("late fusion": ``LateFusion(combine="learned")``, trained
    with its own loss), each with :data:`REFERENCE_RECIPE` (width 128, dropout 0.5, 40 epochs
    of AdamW at lr 2e-3, weight decay 0.05) and ``course_lib.train.train``. Only the three
    records are used (``"image"``, ``"text"``, ``"audio"``): a feature built from two records
    would hand late fusion the comparison it cannot make. With ``include_early`` also
    "early fusion (reference)", the chapter's first recipe: ``EarlyFusion`` over the three.

    Args:
        train_features: modality -> ``(N, D_m)`` training features (at least one of
            "image", "text", "audio").
        train_labels: ``(N,)`` class indices in ``[0, 4)``.
        device: where to train (``None``: the CPU).
        seed: seeds each model's initialisation and the shuffling.

    Returns:
        name -> trained model, in evaluation mode.

    Raises:
        ValueError: naming the argument, for features that are not a dict of (N, D) tensors
            with the same N, or labels that are not (N,) class indices.
    """
    from course_lib.fusion import EarlyFusion, LateFusion
    from course_lib.train import train

    if not isinstance(train_features, Mapping) or not train_features or not all(
            isinstance(x, torch.Tensor) and x.ndim == 2 and x.is_floating_point()
            for x in train_features.values()):
        raise ValueError(f"train_features must be a non-empty dict modality -> (N, D) float "
                         f"tensor, got {shape_of(train_features)}")
    rows = {len(x) for x in train_features.values()}
    if len(rows) != 1:
        raise ValueError(f"train_features must have the same N for every modality, got "
                         f"{ {m: len(x) for m, x in train_features.items()} }")
    count = rows.pop()
    if not isinstance(train_labels, torch.Tensor) or train_labels.shape != (count,) or \
            train_labels.is_floating_point() or train_labels.dtype == torch.bool:
        raise ValueError(f"train_labels must be a ({count},) integer tensor of class indices, "
                         f"got {shape_of(train_labels)}")
    if count and (train_labels.min() < 0 or train_labels.max() >= len(CLASS_NAMES)):
        raise ValueError(f"train_labels must lie in [0, {len(CLASS_NAMES)}), got values from "
                         f"{int(train_labels.min())} to {int(train_labels.max())}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(include_early, bool):
        raise ValueError(f"include_early must be True or False, got {include_early!r}")
    input_dims = {m: int(x.shape[1]) for m, x in train_features.items() if m in MODALITIES}
    if not input_dims:
        raise ValueError(f"train_features must hold at least one of {list(MODALITIES)}, got "
                         f"the keys {list(train_features)}")
    recipe = dict(REFERENCE_RECIPE)
    width, dropout, epochs = recipe.pop("hidden_dim"), recipe.pop("dropout"), recipe.pop("epochs")
    builders = {f"{modality} alone": (lambda dims=dims_one: EarlyFusion(
        dims, len(CLASS_NAMES), hidden_dim=width, dropout=dropout))
        for modality, dims_one in ((m, {m: d}) for m, d in input_dims.items())}
    builders["late fusion"] = lambda: LateFusion(input_dims, len(CLASS_NAMES), combine="learned",
                                                 hidden_dim=width, dropout=dropout)
    if include_early:
        builders["early fusion (reference)"] = lambda: EarlyFusion(
            input_dims, len(CLASS_NAMES), hidden_dim=width, dropout=dropout)
    models: dict[str, nn.Module] = {}
    for name, build in builders.items():
        # Seeded right before its own training: each baseline is the same whichever others
        # are trained with it (dropout draws from the global generator).
        torch.manual_seed(seed)
        model = models[name] = build()
        names = list(model.input_dims)

        def loss_of_batch(batch: tuple[torch.Tensor, ...], model: nn.Module = model,
                          names: list[str] = names) -> torch.Tensor:
            features, labels = dict(zip(names, batch[:-1], strict=True)), batch[-1]
            if hasattr(model, "loss"):
                return model.loss(features, labels)
            return nn.functional.cross_entropy(model(features), labels)

        train(model, loss_of_batch, [train_features[m] for m in names] + [train_labels],
              epochs=epochs, seed=seed, progress=False, device=device, **recipe)
        model.eval()
    return models


# ----------------------------------------------------------------------------- the comparison
@capstone_check
def check_comparison(your_accuracy: float | None, baselines: Mapping[str, float],
                     test_size: int = 1200) -> CheckResult:
    """Your accuracy beats every baseline's (numbers only; :func:`check_core` judges models).

    ``your_accuracy`` and every baseline must be accuracies (finite numbers in [0, 1]); an
    accuracy above the all-modality ceiling by more than two standard errors on ``test_size``
    patients is reported as a leak.
    """
    if your_accuracy is None:
        raise Failed("Finish exercises 1-4 first: there is no trained fusion model to compare.")
    ours = as_accuracy(your_accuracy, "your_accuracy", "is")
    if not isinstance(baselines, Mapping) or not baselines:
        raise Failed(f"Not yet: baselines should be a non-empty dict name -> accuracy, got "
                     f"{type(baselines).__name__}.")
    baselines = {str(name): as_accuracy(acc, f"the baseline {name!r}", "is")
                 for name, acc in baselines.items()}
    if isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 1:
        raise Failed(f"Not yet: test_size should be the number of test patients, got "
                     f"{test_size!r}.")
    check_no_leak(ours, test_size, "image+text+audio", "your model's test accuracy")
    beaten = {name: acc for name, acc in baselines.items() if ours <= acc}
    if beaten:
        worst = max(beaten, key=beaten.get)
        raise Failed(f"Not yet: your model's {ours:.3f} does not beat {worst} "
                     f"({beaten[worst]:.3f}). {_diagnosis(ours, baselines)}")
    margin = ours - max(baselines.values())
    return verdict(True, f"Well done! Your model's test accuracy {ours:.3f} beats every "
                         f"baseline, the best of them by {margin:.3f}.")


def _diagnosis(ours: float, baselines: Mapping[str, float]) -> str:
    """Where to look, from how far the model got: upstream bugs first, then the design."""
    singles = [acc for name, acc in baselines.items() if name.endswith("alone")]
    if ours < 0.35:
        return ("That is close to chance (0.25): the problem is upstream of the fusion. Are "
                "both splits standardised the same way (exercise 1)? Does the training loss "
                "fall (exercise 3)? Does evaluate switch to eval mode (exercise 4)?")
    if singles and ours <= max(singles):
        return ("It does no better than one record alone: check that it receives every record "
                "(exercise 2) and is trained long enough to use them (exercise 3: does the "
                "loss still fall at the end?).")
    return ("It uses more than one record but misses what only records read together show: "
            "does it fuse at the feature level, where the zone named in the report can meet "
            "the zone seen on the film?")


@capstone_check
def check_core(model: nn.Module | None, train_features: Any, train_labels: Any,
               test_features: Any, test_labels: Any,
               device: torch.device | str | None = None) -> CheckResult:
    """Tier *core*: your model beats decision-level late fusion on the test patients.

    Trains the baselines with :func:`train_baselines` (the course's trainer and recipe, not
    yours; with the reference early fusion, for the table), judges every model itself on the
    test patients, and passes when your model is more accurate than late fusion beyond noise
    (the 95 % paired-bootstrap interval of the difference lies above 0) and more accurate
    than every single-record baseline.
    ``value``: ``{"baselines": name -> model, "correct": name -> (N,) bool flags (yours under
    "your model"), "accuracy": name -> float, "difference": the paired comparison}``.
    """
    if model is None:
        raise Failed("Finish exercises 1 to 3 first: there is no trained model to compare.")
    train_features = features_dict(train_features, "train_features")
    test_features = features_dict(test_features, "test_features")
    train_labels = labels_of(train_labels, "train_labels", len(next(iter(train_features.values()))))
    test_labels = labels_of(test_labels, "test_labels", len(next(iter(test_features.values()))))
    ours = correct_flags(model, test_features, test_labels)
    accuracy = ours.float().mean().item()
    check_no_leak(accuracy, len(test_labels), "image+text+audio", "your model's test accuracy")
    baselines = train_baselines(train_features, train_labels, device=device, include_early=True)
    correct = {name: correct_flags(baseline, test_features, test_labels, name)
               for name, baseline in baselines.items()}
    correct["your model"] = ours
    accuracies = {name: flags.float().mean().item() for name, flags in correct.items()}
    difference = paired_bootstrap(ours, correct["late fusion"])
    value = {"baselines": baselines, "correct": correct, "accuracy": accuracies,
             "difference": difference}
    others = {name: acc for name, acc in accuracies.items() if name in BASELINE_CEILINGS}
    if not difference.separated or difference.difference <= 0 or accuracy <= max(others.values()):
        behind = max(others, key=others.get)
        where = (f"it is ahead of late fusion by {difference} on the same patients, within "
                 f"noise" if difference.difference > 0 else f"late fusion is ahead by "
                 f"{-difference.difference:+.3f}")
        result = verdict(False, f"Not yet: your model's test accuracy is {accuracy:.3f}; "
                                f"{behind} reaches {others[behind]:.3f} and {where}. "
                                f"{_diagnosis(accuracy, others)}", value)
        return result
    return verdict(True, f"Well done! Your model's test accuracy {wilson_estimate(ours)} "
                         f"beats decision-level late fusion "
                         f"({accuracies['late fusion']:.3f}, trained by the course's reference "
                         f"trainer) by {difference} on the same {len(test_labels)} patients, "
                         f"beyond noise, and every single-record baseline.", value)


@capstone_check
def check_stretch(model: nn.Module | None, test_features: Any, test_labels: Any) -> CheckResult:
    """Tier *stretch*: a test accuracy of at least :data:`STRETCH_MIN_ACCURACY` (0.90).

    The documented ceiling with every record is 0.9264: an accuracy above it by more than two
    standard errors is a leak, not a pass. ``value``: the accuracy.
    """
    test_features = features_dict(test_features, "test_features")
    test_labels = labels_of(test_labels, "test_labels", len(next(iter(test_features.values()))))
    flags = correct_flags(model, test_features, test_labels)
    accuracy = flags.float().mean().item()
    check_no_leak(accuracy, len(test_labels), "image+text+audio", "your model's test accuracy")
    ceiling = DOCUMENTED_CEILINGS["image+text+audio"]
    if accuracy < STRETCH_MIN_ACCURACY:
        return verdict(False, f"Not yet: your model's test accuracy is "
                              f"{wilson_estimate(flags)}; the stretch tier asks for "
                              f"{STRETCH_MIN_ACCURACY:.2f} (the ceiling is {ceiling:.4f}). Open "
                              f"the hints of section 4: choose on validation patients, never "
                              f"on these.", accuracy)
    return verdict(True, f"Well done! Your model's test accuracy is {wilson_estimate(flags)}, "
                         f"at least {STRETCH_MIN_ACCURACY:.2f}, "
                         f"{ceiling - accuracy:.3f} below the best possible ({ceiling:.4f}).",
                   accuracy)


@capstone_check
def check_robust(model: nn.Module | None, test_features: Any, test_labels: Any,
                 missing: str = "image") -> CheckResult:
    """Tier *robust*: with the film missing, at least :data:`ROBUST_MIN_ACCURACY` on the test.

    The checker removes the film, and every feature built from it (a key that names it, such
    as ``"image*text"``); a model that needs every input (``requires_all_modalities``) gets
    zeros in their place, as ``zero_fill`` gives. The threshold is the report-alone ceiling
    (0.6828); without the film no model can pass the text + audio ceiling (0.7600).
    ``value``: the accuracy.
    """
    if missing not in MODALITIES:
        raise Failed(f"Not yet: missing should be one of {list(MODALITIES)}, got {missing!r}.")
    test_features = features_dict(test_features, "test_features")
    test_labels = labels_of(test_labels, "test_labels", len(next(iter(test_features.values()))))
    kept = {m: x for m, x in test_features.items()
            if missing not in re.split(r"[^a-z]+", m.lower())}
    if not kept:
        raise Failed("Not yet: test_features has no record left once the film is removed.")
    flags = correct_flags(model, kept, test_labels)
    accuracy = flags.float().mean().item()
    rest = "+".join(m for m in MODALITIES if m != missing)
    check_no_leak(accuracy, len(test_labels), rest, f"your model's accuracy without {missing}")
    ceiling = DOCUMENTED_CEILINGS[rest]
    if accuracy < ROBUST_MIN_ACCURACY:
        return verdict(False, f"Not yet: without the {missing} your model's test accuracy is "
                              f"{wilson_estimate(flags)}; the robust tier asks "
                              f"for {ROBUST_MIN_ACCURACY:.4f}, what the report alone could "
                              f"give at best (the best possible from the "
                              f"{rest.replace('+', ' and ')} is {ceiling:.4f}). A model that "
                              f"never met a missing record in training reads the zeros as a "
                              f"strange input: see the hints on modality dropout.", accuracy)
    return verdict(True, f"Well done! Without the {missing} your model still reaches "
                         f"{wilson_estimate(flags)}, above what the report "
                         f"alone could give ({ROBUST_MIN_ACCURACY:.4f}), {ceiling - accuracy:.3f} "
                         f"below the best "
                         f"possible from the {rest.replace('+', ' and ')} ({ceiling:.4f}).",
                   accuracy)
