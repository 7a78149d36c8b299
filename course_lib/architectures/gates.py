"""What a tanh gate lets through: the numbers behind the gate explorer.

h' = h + tanh(alpha) * CrossAttn(LN(h), v): :func:`gate_flow` for one hidden state and one
update, :func:`cross_attention_update` for the update a real block offers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from course_lib.attention import GatedCrossAttentionBlock

__all__ = ["GateFlow", "gate_flow", "cross_attention_update"]


@dataclass(frozen=True)
class GateFlow:
    """What a tanh gate lets through for one value of its parameter alpha.

    Shape: hidden, update, output (D,): output = hidden + tanh(alpha) * update.
    ``relative_change`` = ||output - hidden|| / ||hidden||.
    """

    alpha: float
    gate: float
    hidden: Tensor
    update: Tensor
    output: Tensor
    relative_change: float


def gate_flow(alpha: float, hidden: Tensor, update: Tensor) -> GateFlow:
    """h' = h + tanh(alpha) * update, for a text token's hidden state h and the cross-attention
    update that vision offers it. At alpha = 0 nothing flows in; at alpha = 1, 76.16 %.

    Shape: hidden (D,), update (D,) -> :class:`GateFlow`.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(
            alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    for name, vector in (("hidden", hidden), ("update", update)):
        if not isinstance(vector, Tensor) or vector.dim() != 1:
            raise ValueError(f"{name} must be a vector (D,), got "
                             f"{getattr(vector, 'shape', vector)}")
    if hidden.shape != update.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and update {tuple(update.shape)} "
                         "must have the same width")
    gate = math.tanh(alpha)
    output = hidden + gate * update
    change = float((output - hidden).norm() / hidden.norm().clamp_min(1e-12))
    return GateFlow(float(alpha), gate, hidden, update, output, change)


def cross_attention_update(block: GatedCrossAttentionBlock, hidden: Tensor,
                           media: Tensor) -> Tensor:
    """The update a gated block's cross-attention offers, before its gate: CrossAttn(LN(h), v).

    Shape: hidden (B, N, dim), media (B, M, kv_dim) -> (B, N, dim).
    """
    if not isinstance(block, GatedCrossAttentionBlock):
        raise ValueError(f"block must be a GatedCrossAttentionBlock, got {type(block).__name__}")
    return block.cross_attention(block.attention_norm(hidden), media)
