"""A small LLaMA-like causal language model: RoPE, RMSNorm, SwiGLU, no biases.

The language model every design of this package plugs vision into: LLaVA splices projected
image tokens into its input embeddings (:meth:`DecoderLM.forward_embeddings`), Flamingo runs
its blocks one by one with gated cross-attention in between.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._validation import (
    ArgumentTypeError,
    check_number,
    check_tensor,
    to_weights_dtype,
)
from course_lib.architectures._checks import (
    IGNORE_INDEX,
    MAX_DEPTH,
    _check_positive_int,
    _check_tokens,
    _check_weights,
)
from course_lib.attention import causal_mask

__all__ = ["apply_rotary", "LlamaBlock", "DecoderLM", "next_token_loss", "scored_next_token_loss"]


def apply_rotary(tokens: Tensor, base: float = 10_000.0) -> Tensor:
    """Rotary position embedding (RoPE, LLaMA's ``rotate_half`` layout); no parameters.

    Shape: tokens (B, H, T, head_dim) with an even head_dim -> same shape.
    """
    tokens = check_tensor("tokens", tokens, min_ndim=2)
    base = check_number("base", base, above=1.0)
    if tokens.shape[-1] % 2:
        raise ValueError(f"tokens must have shape (..., T, head_dim) with an even head_dim, "
                         f"got {getattr(tokens, 'shape', tokens)}")
    half = tokens.shape[-1] // 2
    frequencies = base ** (-torch.arange(half, device=tokens.device, dtype=torch.float32) / half)
    angles = torch.arange(tokens.shape[-2], device=tokens.device)[:, None] * frequencies
    cos, sin = angles.cos().to(tokens.dtype), angles.sin().to(tokens.dtype)
    first, second = tokens[..., :half], tokens[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class LlamaBlock(nn.Module):
    """One LLaMA-style decoder layer: RMSNorm, causal self-attention with RoPE and no biases,
    RMSNorm, SwiGLU feed-forward (three matrices: gate, up, down).

    Parameters: 4 dim^2 (attention) + 3 dim ff_dim (SwiGLU) + 2 dim (norms).

    Shape: tokens (B, T, dim), padding_mask (B, T) bool, True = real token -> (B, T, dim).
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int) -> None:
        super().__init__()
        dim = _check_positive_int("dim", dim)
        num_heads = _check_positive_int("num_heads", num_heads)
        ff_dim = _check_positive_int("ff_dim", ff_dim)
        _check_weights("dim * ff_dim", 4 * dim * dim + 3 * dim * ff_dim)
        if dim % num_heads or (dim // num_heads) % 2:
            raise ValueError(f"dim {dim} must split into num_heads {num_heads} heads of even "
                             "width (rotary positions rotate pairs of dimensions)")
        self.num_heads = num_heads
        self.attention_norm = nn.RMSNorm(dim, eps=1e-6)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.feed_forward_norm = nn.RMSNorm(dim, eps=1e-6)
        self.gate_proj = nn.Linear(dim, ff_dim, bias=False)
        self.up_proj = nn.Linear(dim, ff_dim, bias=False)
        self.down_proj = nn.Linear(ff_dim, dim, bias=False)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """tokens (B, T, dim), optional padding_mask (B, T) bool (True = a real token) ->
        (B, T, dim)."""
        tokens = _check_tokens("tokens", tokens, self.attention_norm.normalized_shape[0], self)
        _check_padding_mask(padding_mask, tokens)
        batch, length, dim = tokens.shape
        normed = self.attention_norm(tokens)
        q, k, v = (proj(normed).view(batch, length, self.num_heads, dim // self.num_heads)
                   .transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        mask = causal_mask(length, device=tokens.device)  # (T, T), True = may attend
        if padding_mask is not None:
            mask = mask & padding_mask[:, None, None, :]  # (B, 1, T, T)
        attended = F.scaled_dot_product_attention(apply_rotary(q), apply_rotary(k), v,
                                                  attn_mask=mask)
        tokens = tokens + self.o_proj(attended.transpose(1, 2).reshape(batch, length, dim))
        normed = self.feed_forward_norm(tokens)
        return tokens + self.down_proj(F.silu(self.gate_proj(normed)) * self.up_proj(normed))


def _check_padding_mask(padding_mask: object, tokens: Tensor) -> None:
    if padding_mask is not None and (
            not isinstance(padding_mask, Tensor) or padding_mask.dtype != torch.bool
            or padding_mask.shape != tokens.shape[:2]):
        raise ValueError(f"padding_mask must be a bool tensor of shape "
                         f"{tuple(tokens.shape[:2])} (B, T), got "
                         f"{getattr(padding_mask, 'dtype', padding_mask)} "
                         f"{tuple(getattr(padding_mask, 'shape', ()))}")


class DecoderLM(nn.Module):
    """A LLaMA-like causal language model: token embedding, ``depth`` :class:`LlamaBlock`
    layers, a final RMSNorm and an (untied) output head.

    LLaMA-7B: ``DecoderLM(32000, 4096, 32, 32, 11008)`` (6,738,415,616 parameters).

    Shape: input_ids (B, T) -> logits (B, T, vocab_size); :meth:`forward_embeddings` takes
    (B, T, dim) embeddings (e.g. text with spliced image tokens) instead of ids.
    """

    def __init__(self, vocab_size: int, dim: int, depth: int, num_heads: int,
                 ff_dim: int) -> None:
        super().__init__()
        vocab_size = _check_positive_int("vocab_size", vocab_size)
        dim = _check_positive_int("dim", dim)
        depth = _check_positive_int("depth", depth, MAX_DEPTH)
        _check_weights("vocab_size * dim", 2 * vocab_size * dim)  # embedding and head
        self.vocab_size, self.dim = vocab_size, dim
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(LlamaBlock(dim, num_heads, ff_dim) for _ in range(depth))
        self.final_norm = nn.RMSNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def embed(self, input_ids: Tensor) -> Tensor:
        """Token embeddings (B, T, dim) of ``input_ids`` (B, T), integer ids in [0, vocab_size)."""
        input_ids = check_tensor("input_ids", input_ids, shape=("B", "T"), kind="int")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.vocab_size):
            raise ValueError(f"input_ids must lie in [0, {self.vocab_size}), got values "
                             f"{int(input_ids.min())}..{int(input_ids.max())}")
        return self.token_embedding(input_ids)

    def hidden_states(self, embeddings: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """The final (normalised) hidden state of every position, (B, T, dim), before the
        head."""
        embeddings = _check_tokens("embeddings", embeddings, self.dim, self)
        _check_padding_mask(padding_mask, embeddings)
        for block in self.blocks:
            embeddings = block(embeddings, padding_mask)
        return self.final_norm(embeddings)

    def forward_embeddings(self, embeddings: Tensor,
                           padding_mask: Tensor | None = None) -> Tensor:
        return self.head(self.hidden_states(embeddings, padding_mask))

    def forward(self, input_ids: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        return self.forward_embeddings(self.embed(input_ids), padding_mask)


def next_token_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Causal language-model loss: position t predicts label t + 1; labels -100 are skipped.

    The mean cross-entropy over the scored positions, as in every decoder-only recipe
    (GPT, LLaMA, LLaVA): ``F.cross_entropy(logits[:, :-1], labels[:, 1:])``.

    Shape: logits (B, L, V), labels (B, L) int64 -> scalar.
    """
    logits = check_tensor("logits", logits, shape=("B", "L", "V"))
    labels = check_tensor("labels", labels, kind="int", min_ndim=0)
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels must have shape {tuple(logits.shape[:2])} (B, L of logits), "
                         f"got {getattr(labels, 'shape', labels)}")
    targets = labels[:, 1:]
    if not bool((targets != IGNORE_INDEX).any()):
        raise ValueError("labels marks no position to score (every label after the first "
                         "position is -100)")
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           targets.reshape(-1), ignore_index=IGNORE_INDEX)


def scored_next_token_loss(hidden: Tensor, head: nn.Module, labels: Tensor) -> Tensor:
    """:func:`next_token_loss` of ``head(hidden)``, with the head run only where a label is
    scored: the same number, much cheaper when most labels are -100 (a user turn, an image).

    Shape: hidden (B, L, dim), labels (B, L) -> scalar.
    """
    if not isinstance(head, nn.Module):
        raise ArgumentTypeError(f"head must be an nn.Module (the output layer), got "
                                f"{type(head).__name__}")
    hidden = to_weights_dtype("hidden", hidden, head, shape=("B", "L", "dim"))
    width = getattr(head, "in_features", None)
    if width is not None and hidden.shape[-1] != width:
        raise ValueError(f"hidden has width {hidden.shape[-1]}, but head takes {width}")
    labels = check_tensor("labels", labels, kind="int", min_ndim=0)
    if labels.shape != hidden.shape[:2]:
        raise ValueError(f"labels must have shape {tuple(hidden.shape[:2])} (B, L of hidden), "
                         f"got {getattr(labels, 'shape', labels)}")
    targets = labels[:, 1:]
    scored = targets != IGNORE_INDEX
    if not bool(scored.any()):
        raise ValueError("labels marks no position to score (every label after the first "
                         "position is -100)")
    return F.cross_entropy(head(hidden[:, :-1][scored]), targets[scored])
