"""Argument checks shared by the architecture modules (errors that name the argument)."""

from __future__ import annotations

from torch import Tensor

IGNORE_INDEX = -100  # label value that F.cross_entropy skips (its default ignore_index)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_tokens(name: str, tokens: object, width: int | None = None) -> None:
    if not isinstance(tokens, Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"{name} must have shape (B, tokens, width), got {shape}")
    if width is not None and tokens.shape[-1] != width:
        raise ValueError(f"{name} has width {tokens.shape[-1]}, but the model was built for "
                         f"width {width}")
