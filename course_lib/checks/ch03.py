"""Checkers for chapter 03's exercises: masked attention and the multi-head split.

Each checker calls the learner's function on inputs it controls (a fully masked row
included), compares with the course's reference (:func:`course_lib.attention.
scaled_dot_product_attention`, the head split of :class:`course_lib.attention.
MultiHeadCrossAttention`) and names the typical mistake when it recognises one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from course_lib._validation import check_int, check_tensor
from course_lib.attention import scaled_dot_product_attention
from course_lib.checks._common import (
    CheckResult,
    Failed,
    call_learner,
    close,
    guarded,
    learner_result,
    verdict,
)

_ADVICE = ("Use torch operations (torch.softmax, @, masked_fill) so that the result stays a "
           "tensor.")


def _tensor(value: object, who: str, shape: tuple[int, ...]) -> Tensor:
    """The learner's result as a tensor of ``shape``, or a precise :class:`Failed`."""
    return learner_result(value, who, shape, _ADVICE, floating=True,
                          reject="all NaN", detach=True)


def _attention_case() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A batch of 2, 3 queries, 4 keys, width 8; row 2 of example 1 has no allowed key."""
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(2, 3, 8, generator=generator) * 2
    key = torch.randn(2, 4, 8, generator=generator) * 2
    value = torch.randn(2, 4, 5, generator=generator)
    mask = torch.tensor([[[True, True, False, True], [True, False, False, False],
                          [False, False, False, False]],
                         [[True, True, True, True], [False, True, True, False],
                          [True, False, True, False]]])
    return query, key, value, mask


def _masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    open_rows = mask.any(dim=dim, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~open_rows, 0),
                            dim=dim)
    return weights.masked_fill(~mask, 0.0)


@guarded
def check_masked_attention(masked_attention: Callable) -> CheckResult:
    """Check ``masked_attention(query, key, value, mask) -> (output, weights)``.

    Shape: query (B, N, d), key (B, M, d), value (B, M, d_v), mask (B, N, M) bool (True = may
    attend) -> output (B, N, d_v), weights (B, N, M). A row with no allowed key must give zero
    weights and a zero output.
    """
    query, key, value, mask = _attention_case()
    result = call_learner(masked_attention, query.clone(), key.clone(), value.clone(),
                          mask.clone(), exercise="check_masked_attention")
    if not isinstance(result, tuple) or len(result) != 2:
        raise Failed(f"Not yet: masked_attention should return a pair (output, weights), got "
                     f"{type(result).__name__}.")
    output, weights = result
    weights = _tensor(weights, "weights", (2, 3, 4))
    output = _tensor(output, "output", (2, 3, 5))
    expected_output, expected_weights = scaled_dot_product_attention(query, key, value, mask)
    open_rows = mask.any(-1)
    inverted = _masked_softmax(query @ key.transpose(-2, -1) / math.sqrt(8), ~mask)
    if close(torch.nan_to_num(weights), inverted):
        raise Failed("Not yet: your weights fall exactly on the blocked keys. In this course "
                     "True means 'may attend': block where the mask is False (~mask).")
    if torch.isnan(weights[open_rows]).any() or torch.isnan(output[open_rows]).any():
        raise Failed("Not yet: your result has NaN in rows that do have allowed keys. Fill the "
                     "blocked scores with float('-inf') before the softmax, not after.")
    if not torch.isfinite(weights).all() or not torch.isfinite(output).all():
        raise Failed("Not yet: example 1's last query has no allowed key at all, and your "
                     "function returns NaN there (softmax of [-inf, -inf, ...] is 0/0). Give "
                     "such a row zero weights and a zero output, e.g. fill its scores with 0 "
                     "before the softmax and its weights with 0 after.")
    if close(weights, expected_weights) and close(output, expected_output):
        return verdict(True, "Well done! Your masked attention matches the course's, including "
                             "the row that may attend to nothing.")
    if (weights[~mask].abs() > 1e-6).any():
        raise Failed("Not yet: some blocked pairs (mask False) get a non-zero weight. Set their "
                     "scores to float('-inf') before the softmax.")
    if not close(weights[open_rows].sum(-1), torch.ones(int(open_rows.sum()))):
        scores = query @ key.transpose(-2, -1) / math.sqrt(8)
        if close(weights, _masked_softmax(scores, mask, dim=-2)):
            raise Failed("Not yet: your weights are normalised over the queries. Take the "
                         "softmax over the keys (the last dimension, dim=-1): each query's row "
                         "must sum to 1.")
        raise Failed("Not yet: the weights of a query with allowed keys should sum to 1 "
                     "(softmax over the last dimension).")
    unscaled = _masked_softmax(query @ key.transpose(-2, -1), mask)
    if close(weights, unscaled):
        raise Failed("Not yet: your weights are those of unscaled scores. Divide Q K^T by "
                     "sqrt(d_k) (here sqrt(8)) before the softmax.")
    if close(weights, expected_weights):
        raise Failed("Not yet: the weights are right, but the output is not: it should be "
                     "weights @ value.")
    raise Failed("Not yet: your weights differ from softmax(Q K^T / sqrt(d_k)) with the mask "
                 f"(largest difference {(weights - expected_weights).abs().max():.3g}).")


def reference_split_heads(tokens: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, D / H): head h gets features h*D/H ... (h+1)*D/H - 1."""
    tokens = check_tensor("tokens", tokens, shape=("B", "T", "D"))
    num_heads = check_int("num_heads", num_heads, minimum=1)
    if tokens.shape[-1] % num_heads:
        raise ValueError(f"num_heads {num_heads} must divide the width D = {tokens.shape[-1]} "
                         f"of tokens")
    batch, length, width = tokens.shape
    return tokens.reshape(batch, length, num_heads, width // num_heads).transpose(1, 2)


@guarded
def check_split_heads(split_heads: Callable) -> CheckResult:
    """Check ``split_heads(tokens, num_heads)``: (B, T, D) -> (B, H, T, D / H).

    Tried on (2, 5, 12) with 3 heads and on (1, 7, 8) with 2 heads (T odd, T != H).
    """
    for shape, heads in (((2, 5, 12), 3), ((1, 7, 8), 2)):
        tokens = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape)
        who = f"split_heads(tokens of shape {shape}, num_heads={heads})"
        got = call_learner(split_heads, tokens.clone(), heads, exercise="check_split_heads",
                           name=who)
        batch, length, width = shape
        expected = reference_split_heads(tokens, heads)
        if isinstance(got, Tensor) and tuple(got.shape) == (batch, length, heads, width // heads):
            raise Failed(f"Not yet: {who} has shape {tuple(got.shape)}: the heads must come "
                         "before the tokens, (B, H, T, D/H). Add .transpose(1, 2).")
        got = _tensor(got, who, tuple(expected.shape))
        if close(got, expected):
            continue
        if close(got, tokens.reshape(batch, heads, length, width // heads)):
            raise Failed(f"Not yet: {who} has the right shape but mixes tokens: a plain "
                         "reshape to (B, H, T, D/H) cuts the flat data in the wrong order. "
                         "Reshape to (B, T, H, D/H) first, then swap dimensions 1 and 2.")
        if close(got, tokens.reshape(batch, length, width // heads, heads).permute(0, 3, 1, 2)):
            raise Failed(f"Not yet: in {who} each head should get a contiguous slice of "
                         f"{width // heads} features, not every {heads}-th feature. Reshape to "
                         "(B, T, H, D/H), not (B, T, D/H, H).")
        raise Failed(f"Not yet: {who} has the right shape but different values; head h should "
                     f"hold features h*D/H to (h+1)*D/H - 1 of every token.")
    return verdict(True, "Well done! Your split gives every head its own contiguous slice of "
                         "the width, as MultiHeadCrossAttention does.")
