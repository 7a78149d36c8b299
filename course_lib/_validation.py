"""Argument checks shared by every public function of the course: one place, one style.

Each check either returns the (possibly converted) value or raises an error that names the
argument, says what was expected and shows what came, e.g.
``images must be a float tensor of shape (B, C, H, W), got shape (3, 32, 32)``.
Wrong *kinds* of value (a string for a size, a list for a tensor) raise
:class:`ArgumentTypeError`, a ``TypeError`` that is also a ``ValueError`` (so code written
against the course's older ``ValueError`` keeps working); wrong *values* (a shape, a range)
raise ``ValueError``.

The dtype policy of the course
------------------------------
* A tensor argument is a ``torch.Tensor`` or a ``numpy.ndarray``; a numpy array is converted
  with ``torch.as_tensor`` (sharing its memory where it can). Python lists are not tensors:
  the message says to wrap them in ``torch.tensor(...)``. (A few arguments documented as
  "a tensor or a list", such as ``padding_mask(lengths)``, accept lists too.)
* Real-valued data (images, features, tokens, waveforms, attention weights) must have a
  floating dtype. Integer, bool and complex tensors are rejected with a hint
  (``.float()``): an image of integers 0..255 is a different quantity from floats in [0, 1],
  so the course does not guess.
* A module with learned weights casts a floating input to the dtype of its weights (float32
  unless you changed it): float64, what ``torch.tensor(numpy_array)`` gives, then works
  instead of failing inside a matmul with "mat1 and mat2 must have the same dtype". Such
  inputs raised before, so no number that a chapter prints changes.
* Functions without weights compute in the floating dtype they are given (float64 stays
  float64, for exact worked examples).
* Ids (token ids, indices) must have an integer dtype; floats are rejected with ``.long()``.

Sizes that allocate memory or drive a loop have an upper bound (:data:`MAX_ELEMENTS` values
in one allocation, :data:`MAX_TOKENS` tokens in one sequence, :data:`MAX_LOOP` iterations), so
that a typo such as ``10**9`` fails at once instead of filling the memory or hanging.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

# Bounds: generous for the course's models, small enough that a typo fails in milliseconds.
MAX_ELEMENTS = 2**26  # values in one allocation (256 MiB of float32)
MAX_TOKENS = 16_384  # tokens in one sequence (a (N, N) bool mask is then 256 MiB)
MAX_LOOP = 1_000_000  # iterations of a Python loop a size may ask for

__all__: list[str] = []  # private module: imported by name inside course_lib only


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind: a ``TypeError`` that ``except ValueError`` also catches."""


def describe(value: Any) -> str:
    """A short description of what came, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, (bool, int, float, complex, str, type(None))) or np.isscalar(value):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    return f"a {type(value).__name__}"


# ----------------------------------------------------------------------------- scalars
def check_int(name: str, value: Any, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as an ``int`` (Python or numpy integer; not bool, not a float like 3.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an integer, got {describe(value)}")
    value = operator.index(value)
    _check_range(name, value, minimum, maximum)
    return value


def check_number(name: str, value: Any, *, minimum: float | None = None,
                 maximum: float | None = None, above: float | None = None,
                 below: float | None = None, finite: bool = True) -> float:
    """``value`` as a ``float``: a real number (int, float, numpy scalar; not bool, not complex).

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones; NaN is
    always rejected and inf too unless ``finite=False``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value}")
    _check_range(name, value, minimum, maximum)
    if above is not None and not value > above:
        raise ValueError(f"{name} must be greater than {_show(above)}, got {_show(value)}")
    if below is not None and not value < below:
        raise ValueError(f"{name} must be less than {_show(below)}, got {_show(value)}")
    return value


def _show(number: float | None) -> str:
    return str(number) if isinstance(number, (int, type(None))) else f"{number:g}"


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    low, high, got = _show(minimum), _show(maximum), _show(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{low}, {high}], got {got}")
    if minimum is not None and value < minimum:
        words = {0: "non-negative", 1: "positive"}.get(minimum, f"at least {low}")
        raise ValueError(f"{name} must be {words}, got {got}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {high}, got {got}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ==, so "Test" is not "test")."""
    choices = tuple(choices)
    if isinstance(value, (bool, np.bool_)) and not any(isinstance(c, bool) for c in choices):
        raise ArgumentTypeError(f"{name} must be one of {_listing(choices)}, got {value!r}")
    try:
        found = value in choices
    except (TypeError, ValueError):  # unhashable or array-like values
        found = False
    if not found:
        raise ValueError(f"{name} must be one of {_listing(choices)}, got {describe(value)}")
    return value


def _listing(choices: tuple[Any, ...]) -> str:
    return ", ".join(repr(c) for c in choices)


def check_text(name: str, value: Any) -> str:
    """``value`` if it is a ``str``."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {describe(value)}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool (True or False, not 0 or "yes")."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def check_allocation(name: str, count: int, limit: int = MAX_ELEMENTS,
                     what: str = "values") -> int:
    """Refuse a size that would allocate more than ``limit`` values (or loop ``limit`` times).

    Memory limits (``what`` other than "iterations") do not apply while the default device is
    ``meta``, where tensors have shapes but no storage (how the course sizes real models).
    """
    if what != "iterations" and torch.get_default_device().type == "meta":
        return count
    if count > limit:
        raise ValueError(f"{name} would need {count:,} {what}, more than the course's limit of "
                         f"{limit:,}: choose a smaller {name}")
    return count


# ----------------------------------------------------------------------------- tensors
_KINDS = {
    "float": ("a float", lambda t: t.is_floating_point(), ".float()"),
    "int": ("an integer", lambda t: not t.is_floating_point() and not t.is_complex()
            and t.dtype != torch.bool, ".long()"),
    "bool": ("a bool", lambda t: t.dtype == torch.bool, ".bool() (True = keep / may attend)"),
    None: ("a", lambda t: True, ""),
}

Dims = dict[str, tuple[int, str]]


def check_tensor(name: str, value: Any, *, shape: Sequence[Any] | None = None,
                 ndim: int | Sequence[int] | None = None, min_ndim: int | None = None,
                 kind: str | None = "float", finite: bool = False, dims: Dims | None = None,
                 nonempty: bool = False) -> torch.Tensor:
    """``value`` as a tensor of the expected kind and shape (numpy arrays are converted).

    Args:
        name: the argument's name, for the message.
        shape: expected shape; each entry an int (that size), a str (a named dimension such
            as "B", which must agree across the arguments sharing ``dims``), or None (any);
            a leading ``...`` allows any number of leading dimensions.
        ndim / min_ndim: allowed number(s) of dimensions, or the least.
        kind: "float", "int", "bool" or None (any dtype).
        finite: reject NaN and inf.
        dims: the named sizes seen so far (filled in as names are met).
        nonempty: reject tensors with no elements.
    """
    described = _spec(shape) if shape is not None else None
    expected = f"{_KINDS[kind][0]} tensor" + (f" of shape {described}" if described else "")
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.dtype.kind in "USV":
            raise ArgumentTypeError(f"{name} must be {expected}, got {describe(value)}")
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        hint = " (wrap it in torch.tensor(...))" if isinstance(value, (list, tuple)) else ""
        raise ArgumentTypeError(f"{name} must be {expected}, got {describe(value)}{hint}")
    label, accepts, convert = _KINDS[kind]
    if not accepts(value):
        raise ArgumentTypeError(f"{name} must be {label} tensor, got dtype {value.dtype}"
                                + (f": convert it with {convert}" if convert else ""))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            wanted = described or " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(f"{name} must have shape {wanted}, got {tuple(value.shape)}")
    if min_ndim is not None and value.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s)"
                         f"{' ' + described if described else ''}, got {tuple(value.shape)}")
    if shape is not None:
        _match_shape(name, value, tuple(shape), described, dims if dims is not None else {})
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and value.device.type != "meta" \
            and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return value


def _spec(shape: Sequence[Any]) -> str:
    parts = ["..." if s is Ellipsis else ("any" if s is None else str(s)) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _match_shape(name: str, value: torch.Tensor, shape: tuple[Any, ...], described: str,
                 dims: Dims) -> None:
    leading = bool(shape) and shape[0] is Ellipsis
    fixed = shape[1:] if leading else shape
    if (value.dim() < len(fixed)) if leading else (value.dim() != len(fixed)):
        raise ValueError(f"{name} must have shape {described}, got {tuple(value.shape)}")
    offset = value.dim() - len(fixed)
    for position, wanted in enumerate(fixed):
        size = value.shape[offset + position]
        if wanted is None:
            continue
        if isinstance(wanted, int):
            if size != wanted:
                raise ValueError(f"{name} must have shape {described}, got "
                                 f"{tuple(value.shape)} (dimension {offset + position} is "
                                 f"{size}, expected {wanted})")
        elif wanted in dims and dims[wanted][0] != size:
            seen, where = dims[wanted]
            raise ValueError(f"{name} has {wanted} = {size} (shape {tuple(value.shape)}), but "
                             f"{where} has {wanted} = {seen}: they must agree")
        else:
            dims.setdefault(wanted, (size, name))


def to_weights_dtype(name: str, value: Any, module: torch.nn.Module, **checks: Any
                     ) -> torch.Tensor:
    """Check a float input of ``module`` and cast it to the dtype of the module's weights.

    This is the dtype policy's one conversion: float64 (or float16) inputs meet float32
    weights as float32. (Devices are not changed: put inputs where the model is.)
    """
    value = check_tensor(name, value, **checks)
    parameter = next(module.parameters(), None)
    if parameter is None:
        return value
    if value.device != parameter.device and parameter.device.type != "meta":
        raise ValueError(f"{name} is on {value.device} but the {type(module).__name__}'s weights "
                         f"are on {parameter.device}: move it with .to({str(parameter.device)!r})")
    if parameter.is_floating_point() and value.dtype != parameter.dtype:
        value = value.to(parameter.dtype)
    return value


def check_distribution(name: str, weights: torch.Tensor, *, tolerance: float = 1e-3,
                       allow_empty_rows: bool = True) -> torch.Tensor:
    """Rows (last dimension) of non-negative finite weights summing to 1 (or all zero, the
    course's convention for a query whose every key is masked)."""
    weights = check_tensor(name, weights, min_ndim=1, finite=True)
    if weights.numel() and bool((weights < 0).any()):
        raise ValueError(f"{name} must be non-negative (probabilities), got a minimum of "
                         f"{float(weights.min()):.4g}")
    sums = weights.sum(dim=-1)
    good = (sums - 1).abs() <= tolerance * max(1, weights.shape[-1]) ** 0.5
    if allow_empty_rows:
        good |= sums == 0
    if sums.numel() and not bool(good.all()):
        bad = sums[~good].flatten()[:3].tolist()
        raise ValueError(f"{name} must have rows that sum to 1 (a distribution over the last "
                         f"dimension), got row sums such as {[round(s, 4) for s in bad]}")
    return weights


# ----------------------------------------------------------------------------- collections
def check_sequence(name: str, value: Any, *, of: str = "items", min_length: int = 0
                   ) -> list[Any]:
    """``value`` as a list, for an argument that is a sequence of things (tensors, texts, ...).

    A tensor or numpy array is refused: iterating it would give its rows, which is how a
    single tensor passed in place of ``[tensor]`` silently becomes many aligned "tensors".
    A string is refused too (it is a sequence of characters, not of texts).
    """
    if isinstance(value, (torch.Tensor, np.ndarray)):
        raise ArgumentTypeError(f"{name} must be a list or tuple of {of}, got {describe(value)}"
                                f"; for a single one, pass [{name}]")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ArgumentTypeError(f"{name} must be a list or tuple of {of}, got {describe(value)}")
    if len(value) < min_length:
        raise ValueError(f"{name} must hold at least {min_length} {of}, got {len(value)}")
    return list(value)


def check_fields(owner: object, tensors: Sequence[str], lists: Sequence[str] = ()) -> None:
    """The named fields of a record (a dataclass of one row per example) agree on N.

    Each name in ``tensors`` must be a tensor of at least one dimension, each in ``lists`` a
    list; all of them must have the same length N (their first dimension).
    """
    rows = {}
    for name in tensors:
        value = getattr(owner, name)
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            raise ArgumentTypeError(f"{name} must be a tensor with one row per example, got "
                                    f"{describe(value)}")
        rows[name] = len(value)
    for name in lists:
        value = getattr(owner, name)
        if not isinstance(value, list):
            raise ArgumentTypeError(f"{name} must be a list with one entry per example, got "
                                    f"{describe(value)}")
        rows[name] = len(value)
    if len(set(rows.values())) > 1:
        raise ValueError(f"the fields must all have N rows, got {rows}")


def as_indices(name: str, value: Any, length: int) -> torch.Tensor:
    """Positions into something of ``length`` items, from indices *or* a boolean mask.

    A bool mask (a list, numpy array or tensor of ``length`` booleans) selects where it is
    True; integers are positions (negative ones count from the end). Reading a mask as
    integers would select items 0 and 1 over and over, so masks are recognised by dtype.
    """
    length = check_int("length", length, minimum=0)
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (bool, np.bool_)) for v in value):
        value = torch.tensor([bool(v) for v in value])
    elif isinstance(value, (list, tuple, range)):
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))
               for v in value):
            raise ArgumentTypeError(f"{name} must be integer positions or a bool mask, got a "
                                    f"list holding {sorted({type(v).__name__ for v in value})}")
        value = torch.tensor([int(v) for v in value], dtype=torch.long)
    value = check_tensor(name, value, kind=None, ndim=1)
    if value.dtype == torch.bool:
        if len(value) != length:
            raise ValueError(f"{name} is a bool mask of {len(value)} entries, but there are "
                             f"{length} items: a mask needs one entry per item")
        return value.nonzero().flatten()
    if value.is_floating_point() or value.is_complex():
        raise ArgumentTypeError(f"{name} must be integer positions or a bool mask, got dtype "
                                f"{value.dtype}")
    value = value.long()
    if value.numel() and (int(value.min()) < -length or int(value.max()) >= length):
        raise ValueError(f"{name} must lie in [-{length}, {length}) for {length} items, got "
                         f"values from {int(value.min())} to {int(value.max())}")
    return value % max(length, 1)
