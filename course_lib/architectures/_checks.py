"""Argument checks shared by the architecture modules (errors that name the argument).

They go through the course's one validation layer (:mod:`course_lib._validation`), with its
dtype policy: token tensors must be floating point, numpy arrays are converted, and a module
casts float64 inputs to the dtype of its weights; ids must be integers.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from course_lib._validation import (
    MAX_ELEMENTS,
    MAX_TOKENS,
    ArgumentTypeError,
    check_allocation,
    check_int,
    check_tensor,
    describe,
    to_weights_dtype,
)

IGNORE_INDEX = -100  # label value that F.cross_entropy skips (its default ignore_index)
MAX_DEPTH = 1_000  # layers in one model: far above the course's, small enough to fail at once


def _check_positive_int(name: str, value: object, maximum: int | None = None) -> int:
    """``value`` as a positive int (numpy integers too; not bool, not 3.0)."""
    return check_int(name, value, minimum=1, maximum=maximum)


def _check_weights(name: str, count: int) -> None:
    """Refuse a size whose weights alone would exceed the course's allocation limit."""
    check_allocation(name, count, MAX_ELEMENTS, "weights")


def _check_tokens(name: str, tokens: object, width: int | None = None,
                  module: nn.Module | None = None) -> Tensor:
    """``tokens`` as a float tensor (B, tokens, width), cast to ``module``'s weights dtype."""
    spec = {"shape": (None, None, None), "kind": "float"}
    if module is not None:
        tokens = to_weights_dtype(name, tokens, module, **spec)
    else:
        tokens = check_tensor(name, tokens, **spec)
    if width is not None and tokens.shape[-1] != width:
        raise ValueError(f"{name} has width {tokens.shape[-1]}, but the model was built for "
                         f"width {width}")
    return tokens


def _check_ids(name: str, ids: object, vocab_size: int | None = None,
               shape: tuple[Any, ...] = ("B", "T"), dims: dict | None = None) -> Tensor:
    """``ids`` as an integer tensor of ``shape``, every id in [0, vocab_size) if given."""
    ids = check_tensor(name, ids, shape=shape, kind="int", dims=dims)
    if vocab_size is not None and ids.numel() and ids.device.type != "meta" and (
            int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{name} must lie in [0, {vocab_size}), got values "
                         f"{int(ids.min())}..{int(ids.max())}")
    return ids


def _check_id(name: str, value: object, vocab_size: int | None = None,
              optional: bool = False) -> int | None:
    """One token id (an int in [0, vocab_size)), or None where ``optional``."""
    if value is None and optional:
        return None
    maximum = None if vocab_size is None else vocab_size - 1
    return check_int(name, value, minimum=0, maximum=maximum)


def _check_mask(name: str, mask: object, shape: tuple[int, ...]) -> Tensor:
    """A bool mask of exactly ``shape`` (True = a real token / may attend)."""
    mask = check_tensor(name, mask, kind="bool", ndim=len(shape))
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must be a bool tensor of shape {tuple(shape)}, got "
                         f"{tuple(mask.shape)}")
    return mask


def _check_module(name: str, value: object, kind: type = nn.Module,
                  optional: bool = False) -> Any:
    """``value`` if it is an instance of ``kind`` (or None where ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        raise ArgumentTypeError(f"{name} must be a {kind.__name__}, got {describe(value)}")
    return value


def _check_new_tokens(max_new_tokens: object) -> int:
    """How many tokens a greedy decoder may append (each one runs the whole model)."""
    return check_int("max_new_tokens", max_new_tokens, minimum=1, maximum=MAX_TOKENS)


def _check_sequence_allocation(name: str, batch: int, length: int, width: int) -> None:
    check_allocation(name, batch * length * width)


__all__: list[str] = []  # private module
