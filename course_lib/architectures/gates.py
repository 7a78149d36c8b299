"""What a tanh gate lets through: the numbers behind the gate explorer.

h' = h + tanh(alpha) * CrossAttn(LN(h), v): :func:`gate_flow` for one hidden state and one
update, :func:`cross_attention_update` for the update a real block offers, and
:func:`gate_sweep` for a trained model's answers as its gates are closed and reopened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib.architectures.flamingo import FlamingoLikeModel
from course_lib.attention import GatedCrossAttentionBlock

__all__ = ["GateFlow", "gate_flow", "cross_attention_update", "GateSweep", "gate_sweep"]


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


@dataclass(frozen=True)
class GateSweep:
    """A trained Flamingo-like model's answers as every gate's alpha is scaled from 0 up.

    Scale s sets every gate to tanh(s * alpha_trained): s = 0 is the frozen language model
    alone, s = 1 the trained model.

    Shape: scales (S,); attention_alphas (G,) the trained alphas of the G attention gates;
    accuracy (S,) held-out accuracy at each scale (first answer token = the expected one);
    probabilities (S, K) one example's probability of each of the K ``candidates``.
    """

    scales: Tensor
    attention_alphas: Tensor
    accuracy: Tensor
    probabilities: Tensor
    candidates: tuple[str, ...]
    example_answer: str

    def index(self, scale: float) -> int:
        """The sweep position nearest to ``scale``."""
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(
                scale):
            raise ValueError(f"scale must be a finite number, got {scale!r}")
        return int((self.scales - float(scale)).abs().argmin())


@torch.no_grad()
def gate_sweep(model: FlamingoLikeModel, media: Tensor, prompt_ids: Tensor, answer_ids: Tensor,
               candidate_ids: Tensor, candidates: tuple[str, ...], example: int = 0,
               scales: Tensor | None = None) -> GateSweep:
    """Run ``model`` on held-out prompts with every gate's alpha scaled, for the explorer.

    Args:
        model: a trained :class:`~course_lib.architectures.flamingo.FlamingoLikeModel`.
        media: the prompts' images (or features), as for the model's forward.
        prompt_ids: (N, T) prompts that end where the answer begins.
        answer_ids: (N,) the expected first answer token of each prompt.
        candidate_ids: (K,) token ids whose probabilities are shown; ``candidates`` their
            names (K strings).
        example: the row whose probabilities are recorded.
        scales: (S,) alpha scales (default 0, 0.05, ..., 1).
    """
    if not isinstance(model, FlamingoLikeModel):
        raise ValueError(f"model must be a FlamingoLikeModel, got {type(model).__name__}")
    if not isinstance(prompt_ids, Tensor) or prompt_ids.dim() != 2:
        raise ValueError(f"prompt_ids must have shape (N, T), got "
                         f"{getattr(prompt_ids, 'shape', prompt_ids)}")
    if not isinstance(answer_ids, Tensor) or answer_ids.shape != prompt_ids.shape[:1]:
        raise ValueError(f"answer_ids must hold one id per prompt ({len(prompt_ids)},), got "
                         f"{getattr(answer_ids, 'shape', answer_ids)}")
    if not isinstance(candidate_ids, Tensor) or candidate_ids.dim() != 1 or (
            len(candidate_ids) != len(candidates)):
        raise ValueError(f"candidate_ids (K,) and candidates (K names) must match, got "
                         f"{getattr(candidate_ids, 'shape', candidate_ids)} and "
                         f"{len(candidates)} names")
    if isinstance(example, bool) or not isinstance(example, int) or not (
            0 <= example < len(prompt_ids)):
        raise ValueError(f"example must be a row in [0, {len(prompt_ids)}), got {example!r}")
    scales = torch.linspace(0.0, 1.0, 21) if scales is None else scales.float()
    accuracy, probabilities = [], []
    model.eval()
    for scale in scales.tolist():
        last = model(media, prompt_ids, alpha_scale=scale)[:, -1]  # (N, V)
        accuracy.append((last.argmax(dim=-1) == answer_ids).float().mean())
        probabilities.append(last[example].softmax(dim=-1)[candidate_ids])
    alphas = torch.stack([block.attn_gate.detach() for block in model.cross_blocks]).cpu()
    expected = int(answer_ids[example])
    matches = (candidate_ids == expected).nonzero()
    answer = candidates[int(matches[0])] if len(matches) else str(expected)
    return GateSweep(scales.cpu(), alphas, torch.stack(accuracy).cpu(),
                     torch.stack(probabilities).cpu(), tuple(candidates), answer)
