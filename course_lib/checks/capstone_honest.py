"""The capstone's tier *honest*: the recipe is chosen on validation patients, the test untouched.

:func:`check_honest` runs the learner's ``choose_recipe`` itself, with every test object of
the learner's namespace replaced, for the duration of the call, by a stand-in that records
and refuses any use (an attribute, an index, a length, a torch function): a selection that
reads the test labels or features is caught in the act, whatever it then does with them.
It also catches validation patients that are fit patients, and "validation" accuracies
that can only be accuracies on the models' own training patients (above the Bayes ceiling).
Imported from :mod:`course_lib.checks.capstone` as the chapter does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from course_lib.checks._capstone_common import (
    as_accuracy,
    call,
    capstone_check,
    features_dict,
    labels_of,
    leak_limit,
    shape_of,
    standard_error,
)
from course_lib.checks._common import CheckResult, Failed, verdict
from course_lib.data.clinic import ClinicData


class _TestSplitWithheld(LookupError):
    """Raised when code under :func:`check_honest` uses the test split."""


class _Withheld:
    """Stands in for a test object while the selection runs; any use is recorded and refused."""

    def __init__(self, name: str, touched: list[str]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_touched", touched)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        self._touched.append(self._name)
        raise _TestSplitWithheld(f"{self._name} is the test split, withheld while the recipe is "
                                f"chosen")

    def __getattr__(self, attribute: str) -> Any:
        return self._refuse()

    __getitem__ = __iter__ = __len__ = __bool__ = __array__ = __call__ = _refuse
    __contains__ = __add__ = __sub__ = __mul__ = __eq__ = __float__ = __index__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        for value in list(args) + list((kwargs or {}).values()):
            if isinstance(value, _Withheld):
                value._refuse()
        return NotImplemented


def _is_test_object(name: str, value: Any, withheld: tuple[Any, ...]) -> bool:
    if any(value is item for item in withheld):
        return True
    if isinstance(value, ClinicData):
        return value.split == "test"
    return name.startswith("test") and isinstance(value, (torch.Tensor, Mapping, list, tuple))


def _rows_shared(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> int:
    """How many rows of ``b`` also appear, identical in every modality, in ``a``."""
    names = sorted(set(a) & set(b))
    if not names:
        return 0
    flat_a = torch.cat([a[m].flatten(1).float() for m in names], dim=1)
    flat_b = torch.cat([b[m].flatten(1).float() for m in names], dim=1)
    if flat_a.shape[1] != flat_b.shape[1]:
        return 0
    seen = {tuple(row) for row in flat_a.round(decimals=4).tolist()}
    return sum(tuple(row) in seen for row in flat_b.round(decimals=4).tolist())


@capstone_check
def check_honest(choose_recipe: Callable, recipes: Any, fit_features: Any, fit_labels: Any,
                 validation_features: Any, validation_labels: Any,
                 withheld: tuple[Any, ...] = ()) -> CheckResult:
    """Tier *honest*: ``choose_recipe(recipes, fit_features, fit_labels, validation_features,
    validation_labels) -> (name, validation_accuracies)``, the test split untouched.

    ``recipes`` maps a name to a function ``(input_dims, num_classes) -> model``. The learner's
    function trains each candidate on the fit patients, scores it on the validation patients
    and returns the name of the best and every candidate's validation accuracy. The checker
    calls it itself, with every test object of the learner's namespace (``withheld``, any test
    split of the clinic, any tensor or dict whose name starts with "test") replaced by a
    stand-in that records and refuses any use; it then checks that the fit and validation
    patients are different patients, that every candidate has an accuracy in [0, 1], that the
    chosen one has the best, and that no validation accuracy is above the all-modality ceiling
    by more than two standard errors (scores on the models' own training patients are).
    ``recipes`` may also be the learner's function that returns that dict (called here, so an
    untouched stub gets "Not implemented yet"). ``value``: ``(name, validation_accuracies)``.
    """
    if callable(recipes) and not isinstance(recipes, Mapping):
        recipes = call("check_honest", recipes, name=getattr(recipes, "__name__", None))
    if not isinstance(recipes, Mapping) or len(recipes) < 2 or not all(
            callable(build) for build in recipes.values()):
        raise Failed(f"Not yet: recipes should be a dict of at least two candidates, name -> "
                     f"function(input_dims, num_classes) returning a model; got "
                     f"{shape_of(recipes)}.")
    fit_features = features_dict(fit_features, "fit_features")
    validation_features = features_dict(validation_features, "validation_features")
    fit_labels = labels_of(fit_labels, "fit_labels", len(next(iter(fit_features.values()))))
    validation_labels = labels_of(validation_labels, "validation_labels",
                                len(next(iter(validation_features.values()))))
    shared = _rows_shared(fit_features, validation_features)
    if shared:
        raise Failed(f"Not yet: {shared} of the {len(validation_labels)} validation patients are "
                     f"also fit patients: carve the validation patients out of the training "
                     f"split, apart from the ones the candidates learn from "
                     f"(load_clinic('validation') and load_clinic('fit') share none).")
    namespace = getattr(choose_recipe, "__globals__", None)
    namespace = namespace if isinstance(namespace, dict) else {}
    touched: list[str] = []
    hidden = {name: value for name, value in namespace.items()
              if not name.startswith("_") and _is_test_object(name, value, tuple(withheld))}
    try:
        namespace.update({name: _Withheld(name, touched) for name in hidden})
        try:
            result = call("check_honest", choose_recipe, dict(recipes), fit_features,
                          fit_labels, validation_features, validation_labels)
        except Failed as failure:
            if not touched:
                raise
            result = failure
    finally:
        namespace.update(hidden)
    if touched:
        names = ", ".join(f"`{name}`" for name in dict.fromkeys(touched))
        raise Failed(f"Not yet: while choosing, choose_recipe used {names}, the test split. "
                     f"The test patients must play no part in any choice: train each candidate "
                     f"on fit_features and score it on validation_features only.")
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], Mapping):
        raise Failed(f"Not yet: choose_recipe should return (name, validation_accuracies): the "
                     f"chosen recipe's name and a dict name -> accuracy; got "
                     f"{shape_of(result)}.")
    chosen, scores = result
    missing = [name for name in recipes if name not in scores]
    if missing:
        raise Failed(f"Not yet: validation_accuracies has no accuracy for {missing}: score "
                     f"every candidate.")
    scores = {name: as_accuracy(scores[name], f"the validation accuracy of {name!r}", "is")
              for name in recipes}
    if chosen not in recipes:
        raise Failed(f"Not yet: choose_recipe chose {chosen!r}, which is not one of the "
                     f"recipes {list(recipes)}.")
    best = max(scores.values())
    if scores[chosen] < best - 1e-9:
        top = max(scores, key=scores.get)
        raise Failed(f"Not yet: you chose {chosen!r} ({scores[chosen]:.3f}) although {top!r} "
                     f"has the best validation accuracy ({best:.3f}).")
    ceiling, limit = leak_limit("image+text+audio", len(validation_labels))
    if best > limit:
        raise Failed(f"Not yet: a validation accuracy of {best:.3f} is above the best any model "
                     f"can reach ({ceiling:.4f}) by more than two standard errors ({limit:.3f}): "
                     f"these are accuracies on patients the models learned from. Score each "
                     f"candidate on validation_features, never on fit_features.")
    count = len(validation_labels)
    spread = 2 * standard_error(min(max(best, 1 / count), 1 - 1 / count), count)
    listing = ", ".join(f"{name} {acc:.3f}" for name, acc in scores.items())
    return verdict(True, f"Well done! You chose {chosen!r} on {len(validation_labels)} "
                         f"validation patients ({listing}; each number is uncertain by about "
                         f"+/- {spread:.3f}), without touching the test split.", (chosen, scores))
