"""What attention weights say: their entropy, the explorer's logic, a map over an image.

Part of :mod:`course_lib.attention` (import from there). These are the pure functions behind
chapter 03's attention explorer (:mod:`course_lib.widgets.attention_explorer` only draws them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib._validation import (
    ArgumentTypeError,
    check_distribution,
    check_int,
    check_number,
    check_tensor,
    describe,
)
from course_lib.attention_formula import attention_steps

__all__ = ["EXAMPLE_QUERIES", "EXAMPLE_KEYS", "EXAMPLE_VALUES", "attention_entropy",
           "ExplorerState", "explore_attention", "attention_map_over_image"]


# The worked example of the chapter (d_k = 2): two text queries, three image keys and values.
EXAMPLE_QUERIES = ((1.0, 0.0), (0.0, 1.0))
EXAMPLE_KEYS = ((1.0, 1.0), (0.0, 1.0), (1.0, 0.0))
EXAMPLE_VALUES = ((0.5, 0.3), (0.1, 0.8), (0.9, 0.2))


def attention_entropy(weights: Tensor) -> Tensor:
    """Entropy in bits of each attention row (0 = one key takes everything, log2 M = uniform).

    Shape: weights (..., M) -> (...). Zero weights contribute 0 (0 log 0 = 0).

    Raises:
        ValueError: unless every row is a distribution: finite, non-negative weights that sum
            to 1 (or a row of zeros, a query whose keys were all masked: entropy 0).
    """
    weights = check_distribution("weights", weights)
    logs = torch.log2(weights.clamp_min(torch.finfo(weights.dtype).tiny))
    return -(weights * logs).where(weights > 0, torch.zeros_like(weights)).sum(dim=-1)


@dataclass(frozen=True)
class ExplorerState:
    """What the attention explorer shows for one setting of its sliders.

    Shapes: query (d,), scores/weights (M,), output (d_v,).
    """

    query: Tensor
    scale: float
    scores: Tensor
    weights: Tensor
    output: Tensor
    entropy_bits: float
    max_entropy_bits: float


def explore_attention(angle_deg: float, length: float, temperature: float,
                      keys: Tensor | None = None, values: Tensor | None = None) -> ExplorerState:
    """One 2-D query at ``angle_deg`` and ``length`` attending over ``keys`` (default: the
    worked example's three keys), with scale ``1 / (temperature * sqrt(d_k))``.

    Temperature 1 is standard attention; below 1 sharpens the softmax, above 1 flattens it.

    Shape: keys (M, 2), values (M, d_v) -> see :class:`ExplorerState`.
    """
    keys = torch.tensor(EXAMPLE_KEYS) if keys is None else keys
    values = torch.tensor(EXAMPLE_VALUES) if values is None else values
    keys = check_tensor("keys", keys, kind="float", finite=True)
    if keys.dim() != 2 or keys.shape[-1] != 2 or len(keys) < 1:
        raise ValueError(f"keys must have shape (M, 2) with M >= 1, got {tuple(keys.shape)}")
    values = check_tensor("values", values, kind="float", finite=True)
    if values.dim() != 2 or len(values) != len(keys):
        raise ValueError(f"values must have shape (M, d_v) with M = {len(keys)} (one value per "
                         f"key), got {tuple(values.shape)}")
    angle_deg = check_number("angle_deg", angle_deg)
    length = check_number("length", length)
    if length < 0:
        raise ValueError(f"length must be a non-negative number, got {length!r}")
    temperature = check_number("temperature", temperature)
    if not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    angle = math.radians(angle_deg)
    query = torch.tensor([math.cos(angle), math.sin(angle)], dtype=keys.dtype,
                         device=keys.device) * length
    values = values.to(keys.device)
    scale = 1.0 / (temperature * math.sqrt(keys.shape[-1]))
    steps = attention_steps(query[None], keys, values, scale=scale)
    if not bool(torch.isfinite(steps.scaled_scores).all()):
        raise ValueError(f"length {length:g} with temperature {temperature:g} makes the scores "
                         f"overflow to inf in {keys.dtype}: raise temperature or lower length")
    weights = steps.weights[0]
    return ExplorerState(query, scale, steps.scores[0], weights, steps.output[0],
                         float(attention_entropy(weights)), math.log2(keys.shape[0]))


def attention_map_over_image(weights: Tensor, query_index: int, head: int,
                             grid: tuple[int, int], num_prefix_tokens: int = 0) -> Tensor:
    """One query token's attention over the image patches of one head, as a 2-D map.

    Args:
        weights: attention weights of one example, e.g. ``module.last_weights[0]``.
        query_index: which query token; head: which head.
        grid: (rows, cols) of patches, e.g. (14, 14) for a 224 px image in 16 px patches.
        num_prefix_tokens: context tokens before the patches (e.g. 1 for a CLS token), skipped.

    Shape: weights (H, N, M) with M = num_prefix_tokens + rows * cols -> (rows, cols).
    """
    weights = check_tensor("weights", weights, kind="float")
    if weights.dim() != 3:
        raise ValueError(f"weights must have shape (H, N, M), got {tuple(weights.shape)}")
    num_heads, num_queries, num_keys = weights.shape
    if not isinstance(grid, (tuple, list)) or len(grid) != 2:
        raise ArgumentTypeError(f"grid must be a pair (rows, cols), got {describe(grid)}")
    rows, cols = (check_int(f"grid[{i}]", side, minimum=1) for i, side in enumerate(grid))
    num_prefix_tokens = check_int("num_prefix_tokens", num_prefix_tokens, minimum=0)
    query_index = check_int("query_index", query_index)
    head = check_int("head", head)
    if num_keys != num_prefix_tokens + rows * cols:
        needed = num_prefix_tokens + rows * cols
        raise ValueError(f"weights has {num_keys} context tokens but grid {grid} with "
                         f"{num_prefix_tokens} prefix token(s) needs {needed}")
    if not 0 <= query_index < num_queries:
        raise ValueError(f"query_index {query_index} is outside 0..{num_queries - 1}")
    if not 0 <= head < num_heads:
        raise ValueError(f"head {head} is outside 0..{num_heads - 1}")
    return weights[head, query_index, num_prefix_tokens:].reshape(rows, cols)
