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

from course_lib._validation import (
    MAX_LOOP,
    check_int,
    check_number,
    check_sequence,
    check_tensor,
    check_text,
    to_weights_dtype,
)
from course_lib.architectures._checks import _check_ids, _check_module
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
    alpha = check_number("alpha", alpha)
    hidden = check_tensor("hidden", hidden, shape=("D",), finite=True)
    update = check_tensor("update", update, shape=("D",), finite=True)
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
    block = _check_module("block", block, GatedCrossAttentionBlock)
    hidden = to_weights_dtype("hidden", hidden, block, shape=(None, None, block.dim))
    media = to_weights_dtype("media", media, block,
                             shape=(len(hidden), None, block.cross_attention.kv_dim))
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

    def __post_init__(self) -> None:
        dims: dict = {}
        check_tensor("scales", self.scales, shape=("S",), finite=True, nonempty=True, dims=dims)
        check_tensor("attention_alphas", self.attention_alphas, ndim=1, finite=True)
        check_tensor("accuracy", self.accuracy, shape=("S",), finite=True, dims=dims)
        check_tensor("probabilities", self.probabilities, shape=("S", "K"), finite=True,
                     dims=dims)
        candidates = check_sequence("candidates", self.candidates, of="names")
        if len(candidates) != self.probabilities.shape[1]:
            raise ValueError(f"candidates has {len(candidates)} names but probabilities has "
                             f"{self.probabilities.shape[1]} columns (K)")
        check_text("example_answer", self.example_answer)

    def index(self, scale: float) -> int:
        """The sweep position nearest to ``scale``."""
        scale = check_number("scale", scale)
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
    model = _check_module("model", model, FlamingoLikeModel)
    vocab_size = model.language_model.vocab_size
    dims: dict = {}
    prompt_ids = _check_ids("prompt_ids", prompt_ids, vocab_size, shape=("N", "T"), dims=dims)
    answer_ids = _check_ids("answer_ids", answer_ids, vocab_size, shape=("N",), dims=dims)
    candidate_ids = _check_ids("candidate_ids", candidate_ids, vocab_size, shape=("K",))
    candidates = check_sequence("candidates", candidates, of="names")
    if len(candidate_ids) != len(candidates):
        raise ValueError(f"candidate_ids (K,) and candidates (K names) must match, got "
                         f"{tuple(candidate_ids.shape)} and {len(candidates)} names")
    for position, name in enumerate(candidates):
        check_text(f"candidates[{position}]", name)
    if not len(prompt_ids):
        raise ValueError("prompt_ids must hold at least one prompt (N >= 1), got 0")
    example = check_int("example", example, minimum=0, maximum=len(prompt_ids) - 1)
    if scales is None:
        scales = torch.linspace(0.0, 1.0, 21)
    else:
        scales = check_tensor("scales", scales, ndim=1, finite=True, nonempty=True).float()
        if len(scales) > MAX_LOOP // 1000:
            raise ValueError(f"scales would run the model {len(scales):,} times, more than the "
                             f"course's limit of {MAX_LOOP // 1000:,}: choose fewer scales")
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
