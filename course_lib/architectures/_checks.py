"""Argument checks shared by the architecture modules (errors that name the argument).

They go through the course's one validation layer (:mod:`course_lib._validation`), with its
dtype policy: token tensors must be floating point, numpy arrays are converted, and a module
casts float64 inputs to the dtype of its weights.
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib._validation import ArgumentTypeError, check_tensor, describe, to_weights_dtype

IGNORE_INDEX = -100  # label value that F.cross_entropy skips (its default ignore_index)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be a positive integer, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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
