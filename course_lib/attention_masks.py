"""Attention masks: causal (no peeking at the future) and padding (no attending to padding).

Part of :mod:`course_lib.attention` (import from there). The course's convention is that of
``torch.nn.functional.scaled_dot_product_attention``, **True = may attend / keep**;
``torch.nn.MultiheadAttention`` uses the opposite (True = blocked): :func:`to_torch_mha_mask`
converts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib._validation import (
    MAX_TOKENS,
    ArgumentTypeError,
    check_int,
    check_tensor,
    describe,
)

__all__ = ["causal_mask", "padding_mask", "to_torch_mha_mask"]


def causal_mask(n: int, device: torch.device | str | None = None) -> Tensor:
    """Token i may attend to tokens 0..i (itself and the past), never to the future.

    Shape: -> (n, n) bool, True = may attend (lower triangle, diagonal included).
    """
    check_int("n", n)
    if n < 1:
        raise ValueError(f"n must be a positive integer number of tokens, got {n!r}")
    check_int("n", n, maximum=MAX_TOKENS)
    return torch.ones(n, n, dtype=torch.bool, device=_check_device(device)).tril()


def _check_device(device: object) -> torch.device | None:
    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ArgumentTypeError(f"device must be a torch.device or a name such as 'cpu' or "
                                f"'cuda:0', got {describe(device)}")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device must be a torch.device or a name such as 'cpu' or 'cuda:0', "
                         f"got {device!r}") from error


def padding_mask(lengths: Tensor | list[int], max_len: int | None = None) -> Tensor:
    """True for the real tokens of each sequence, False for the padding after them.

    Args:
        lengths: the number of real tokens of each of the B sequences.
        max_len: the padded length; default ``max(lengths)``.

    Shape: lengths (B,) -> (B, max_len) bool, True = real token (keep).
    """
    if isinstance(lengths, (list, tuple)):
        if any(isinstance(v, bool) or not isinstance(v, int) for v in lengths):
            raise ArgumentTypeError(f"lengths must be a 1-D tensor of integers (or a list of "
                                    f"them), got {describe(lengths)} holding "
                                    f"{sorted({type(v).__name__ for v in lengths})}")
        lengths = torch.tensor(lengths, dtype=torch.long)
    lengths = check_tensor("lengths", lengths, kind=None)
    if lengths.dim() != 1 or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be a 1-D tensor of integers, got dtype {lengths.dtype} "
                         f"and shape {tuple(lengths.shape)}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be non-negative, got {lengths.tolist()}")
    if max_len is None:
        max_len = int(lengths.max()) if len(lengths) else 0
        check_int("max(lengths) (the default max_len)", max_len, maximum=MAX_TOKENS)
    check_int("max_len", max_len, minimum=0, maximum=MAX_TOKENS)
    if len(lengths) and int(lengths.max()) > max_len:
        raise ValueError(f"max_len {max_len} is shorter than the longest length "
                         f"{int(lengths.max())} in lengths")
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def to_torch_mha_mask(mask: Tensor) -> Tensor:
    """Convert a course mask (True = may attend / keep) to ``nn.MultiheadAttention``'s
    convention (True = blocked), for its ``attn_mask`` and ``key_padding_mask`` arguments."""
    mask = check_tensor("mask", mask, kind=None)
    if mask.dtype != torch.bool:
        raise ArgumentTypeError(f"mask must be a bool tensor, got {mask.dtype}")
    return ~mask
