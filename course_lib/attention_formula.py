"""Scaled dot-product attention from scratch, keeping every intermediate for teaching.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Queries ask, keys answer "how relevant am I?", values carry what is passed on. Part of
:mod:`course_lib.attention` (import from there); boolean masks follow
``torch.nn.functional.scaled_dot_product_attention``: **True = may attend**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib._validation import ArgumentTypeError, check_number, check_tensor

__all__ = ["AttentionSteps", "attention_steps", "scaled_dot_product_attention"]


@dataclass(frozen=True)
class AttentionSteps:
    """Every intermediate of one attention call, for teaching.

    Shapes: ``scores``, ``scaled_scores``, ``masked_scores``, ``weights``: (..., N, M);
    ``output``: (..., N, d_v). ``masked_scores`` holds -inf where the mask blocks.
    """

    scores: Tensor
    scale: float
    scaled_scores: Tensor
    masked_scores: Tensor
    weights: Tensor
    output: Tensor


def _broadcast_shapes(*shapes: tuple[int, ...]) -> torch.Size:
    """NumPy broadcasting of shapes (what ``torch.broadcast_shapes`` computes, without the
    second it spends importing symbolic-shape machinery on its first call)."""
    length = max((len(shape) for shape in shapes), default=0)
    result = [1] * length
    for shape in shapes:
        for position, size in enumerate(shape, start=length - len(shape)):
            if size != 1 and result[position] not in (1, size):
                raise RuntimeError(f"shapes {shapes} do not broadcast")
            if size != 1:
                result[position] = size
    return torch.Size(result)


def _check_attention_inputs(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None,
                            scale: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """The three tensors, checked, as one floating dtype (the widest of the three)."""
    checked = []
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        tensor = check_tensor(name, tensor, kind="float")
        if tensor.dim() < 2:
            raise ValueError(f"{name} must have shape (..., tokens, width), "
                             f"got {tuple(tensor.shape)}")
        checked.append(tensor)
    query, key, value = checked
    if len({query.device, key.device, value.device}) > 1:
        raise ValueError(f"query, key and value must be on one device, got {query.device}, "
                         f"{key.device} and {value.device}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query has width {query.shape[-1]} but key has width {key.shape[-1]}: "
                         "query and key must share the width d_k (their last dimension)")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key has {key.shape[-2]} tokens but value has {value.shape[-2]}: "
                         "each key needs exactly one value (dimension -2 must match)")
    try:
        batch = _broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except RuntimeError as error:
        raise ValueError(f"query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)} have leading dimensions that do not broadcast"
                         ) from error
    if scale is None and query.shape[-1] == 0:
        raise ValueError("query has width d_k = 0, so the default scale 1 / sqrt(d_k) is "
                         "undefined: give query and key at least one dimension")
    if scale is not None:
        check_number("scale", scale, above=0)
    dtype = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
    query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    if mask is None:
        return query, key, value
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        kind = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ArgumentTypeError(f"mask must be a bool tensor (True = may attend), got {kind}: "
                                f"convert a 0/1 mask with .bool()")
    target = (*batch, query.shape[-2], key.shape[-2])
    try:
        fits = _broadcast_shapes(mask.shape, target) == torch.Size(target)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, which does not broadcast to the "
                         f"attention scores' shape (..., N, M) = {target}")
    if mask.device != query.device:
        raise ValueError(f"mask is on {mask.device} but query is on {query.device}")
    return query, key, value


def attention_steps(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                    scale: float | None = None) -> AttentionSteps:
    """Scaled dot-product attention, keeping every intermediate matrix.

    Args:
        query: what each of the N tokens is looking for.
        key: what each of the M tokens offers to be matched against.
        value: what each of the M tokens passes on when it is attended to.
        mask: optional bool tensor, True = may attend; broadcastable to (..., N, M).
        scale: multiplies the scores; default ``1 / sqrt(d_k)``.

    Shape:
        query: (..., N, d_k), key: (..., M, d_k), value: (..., M, d_v), mask: (..., N, M)
        -> weights (..., N, M), output (..., N, d_v).

    A query row whose keys are all masked gets zero weights and a zero output (not NaN).
    Inputs may be any floating dtype (numpy arrays are converted); mixed dtypes compute in
    the widest of them.
    """
    query, key, value = _check_attention_inputs(query, key, value, mask, scale)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = query @ key.transpose(-2, -1)
    scaled_scores = scores * scale
    if mask is None:
        masked_scores = scaled_scores
        weights = torch.softmax(scaled_scores, dim=-1)
    else:
        mask = mask.expand_as(scaled_scores)
        masked_scores = scaled_scores.masked_fill(~mask, float("-inf"))
        row_is_open = mask.any(dim=-1, keepdim=True)
        # A fully masked row would be softmax(-inf, ..., -inf) = NaN; give it zeros instead.
        safe_scores = masked_scores.masked_fill(~row_is_open, 0.0)
        weights = torch.softmax(safe_scores, dim=-1).masked_fill(~mask, 0.0)
    output = weights @ value
    return AttentionSteps(scores, scale, scaled_scores, masked_scores, weights, output)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 mask: Tensor | None = None,
                                 scale: float | None = None) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T * scale) V, returning ``(output, weights)``.

    Same arguments, mask convention (True = may attend) and shapes as :func:`attention_steps`;
    matches ``torch.nn.functional.scaled_dot_product_attention`` (which returns no weights).
    """
    steps = attention_steps(query, key, value, mask=mask, scale=scale)
    return steps.output, steps.weights
