"""Attention as nn.Modules: multi-head self- and cross-attention and the blocks built on them.

Part of :mod:`course_lib.attention` (import from there). Each module keeps its last
attention weights (``last_weights``) for plotting; masks are True = may attend / keep.
:class:`TransformerBlock` is the pre-norm block the fusion models stack,
:class:`GatedCrossAttentionBlock` Flamingo's gated block, :func:`encoder_layers` PyTorch's own
encoder layers as the modality encoders use them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib._validation import (
    MAX_ELEMENTS,
    ArgumentTypeError,
    check_allocation,
    check_flag,
    check_int,
    check_number,
    describe,
    to_weights_dtype,
)
from course_lib.attention_formula import scaled_dot_product_attention

MAX_DEPTH = 1_024  # transformer layers in one stack

__all__ = ["MultiHeadCrossAttention", "MultiHeadSelfAttention", "FeedForward",
           "TransformerBlock", "GatedCrossAttentionBlock", "encoder_layers"]


def _check_int(name: str, value: int) -> None:
    check_int(name, value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_dropout(dropout: float) -> float:
    dropout = check_number("dropout", dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return dropout


def _check_tokens(name: str, tokens: Tensor, width: int, module: nn.Module) -> Tensor:
    """A (B, tokens, width) float input of ``module``, cast to its weights' dtype."""
    tokens = to_weights_dtype(name, tokens, module, kind="float")
    if tokens.dim() != 3 or tokens.shape[-1] != width:
        raise ValueError(f"{name} must have shape (B, tokens, {width}), "
                         f"got {tuple(tokens.shape)}")
    return tokens


def _check_bool_mask(name: str, mask: Tensor, shapes: list[tuple[int, ...]]) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise ArgumentTypeError(f"{name} must be a bool tensor (True = keep / may attend), got "
                                f"{getattr(mask, 'dtype', describe(mask))}")
    if tuple(mask.shape) not in shapes:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected one of {shapes}")


class MultiHeadCrossAttention(nn.Module):
    """Multi-head attention of N query tokens over M context tokens (possibly another modality).

    Args:
        dim: width of the query tokens and of the output.
        num_heads: number of heads; each works in ``dim // num_heads`` dimensions.
        kv_dim: width of the context tokens (default ``dim``).

    Shape:
        query_tokens: (B, N, dim), context_tokens: (B, M, kv_dim),
        context_mask: (B, M) bool, True = keep (a real token),
        attention_mask: (N, M) or (B or 1, N, M) bool, True = may attend
        -> (B, N, dim); ``last_weights``: (B, H, N, M) (detached, for plotting). With
        ``return_weights=True`` the forward returns ``(output, weights)`` with live weights.

    Weight mapping to ``nn.MultiheadAttention(dim, num_heads, kdim=kv_dim, vdim=kv_dim)``:
    ``q_proj``/``k_proj``/``v_proj`` are its ``q/k/v_proj_weight`` (or the three thirds of
    ``in_proj_weight``) with the three thirds of ``in_proj_bias``; ``out_proj`` is ``out_proj``.
    See :meth:`load_from_torch` and :meth:`to_torch`.
    """

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        _check_int("dim", dim)
        _check_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        kv_dim = dim if kv_dim is None else kv_dim
        _check_int("kv_dim", kv_dim)
        check_allocation("dim * dim", dim * dim, MAX_ELEMENTS, "weights")
        check_allocation("kv_dim * dim", kv_dim * dim, MAX_ELEMENTS, "weights")
        self.dim, self.num_heads, self.kv_dim = dim, num_heads, kv_dim
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.last_weights: Tensor | None = None

    def _split_heads(self, tokens: Tensor) -> Tensor:  # (B, T, dim) -> (B, H, T, head_dim)
        batch, length, _ = tokens.shape
        return tokens.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query_tokens: Tensor, context_tokens: Tensor,
                context_mask: Tensor | None = None, attention_mask: Tensor | None = None,
                return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        return self._attend(query_tokens, context_tokens, context_mask, attention_mask,
                            return_weights, ("query_tokens", "context_tokens", "context_mask"))

    def _attend(self, query_tokens: Tensor, context_tokens: Tensor, context_mask: Tensor | None,
                attention_mask: Tensor | None, return_weights: bool,
                names: tuple[str, str, str]) -> Tensor | tuple[Tensor, Tensor]:
        query_name, context_name, context_mask_name = names
        check_flag("return_weights", return_weights)
        query_tokens = _check_tokens(query_name, query_tokens, self.dim, self)
        context_tokens = _check_tokens(context_name, context_tokens, self.kv_dim, self)
        (batch, n, _), m = query_tokens.shape, context_tokens.shape[1]
        if context_tokens.shape[0] != batch:
            raise ValueError(f"{context_name} has batch size {context_tokens.shape[0]} but "
                             f"{query_name} has {batch}")
        mask = None
        if context_mask is not None:
            _check_bool_mask(context_mask_name, context_mask, [(batch, m)])
            mask = context_mask[:, None, None, :]  # (B, 1, 1, M)
        if attention_mask is not None:
            _check_bool_mask("attention_mask", attention_mask, [(n, m), (1, n, m), (batch, n, m)])
            pairs = attention_mask.reshape(-1, 1, n, m)  # (B or 1, 1, N, M)
            mask = pairs if mask is None else mask & pairs
        queries = self._split_heads(self.q_proj(query_tokens))
        keys = self._split_heads(self.k_proj(context_tokens))
        values = self._split_heads(self.v_proj(context_tokens))
        heads, weights = scaled_dot_product_attention(queries, keys, values, mask=mask)
        self.last_weights = weights.detach()
        output = self.out_proj(heads.transpose(1, 2).reshape(batch, n, self.dim))
        return (output, weights) if return_weights else output

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadCrossAttention:
        """Copy the weights of an ``nn.MultiheadAttention`` with the same sizes (and bias)."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise ArgumentTypeError(f"mha must be an nn.MultiheadAttention, got {describe(mha)}")
        sizes = (mha.embed_dim, mha.num_heads, mha.kdim, mha.vdim)
        if sizes != (self.dim, self.num_heads, self.kv_dim, self.kv_dim):
            raise ValueError(f"mha has (embed_dim, num_heads, kdim, vdim) = {sizes}, expected "
                             f"{(self.dim, self.num_heads, self.kv_dim, self.kv_dim)}")
        if mha.in_proj_bias is None or mha.bias_k is not None:
            raise ValueError("mha must be built with bias=True and add_bias_kv=False")
        if mha._qkv_same_embed_dim:
            q_weight, k_weight, v_weight = mha.in_proj_weight.chunk(3)
        else:
            q_weight, k_weight, v_weight = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        q_bias, k_bias, v_bias = mha.in_proj_bias.chunk(3)
        pairs = ((self.q_proj, q_weight, q_bias), (self.k_proj, k_weight, k_bias),
                 (self.v_proj, v_weight, v_bias),
                 (self.out_proj, mha.out_proj.weight, mha.out_proj.bias))
        for layer, weight, bias in pairs:
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        return self

    def to_torch(self) -> nn.MultiheadAttention:
        """An ``nn.MultiheadAttention(batch_first=True)`` holding a copy of these weights."""
        mha = nn.MultiheadAttention(self.dim, self.num_heads, kdim=self.kv_dim, vdim=self.kv_dim,
                                    batch_first=True)
        mha = mha.to(self.q_proj.weight.device, self.q_proj.weight.dtype)
        with torch.no_grad():
            weights = [self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]
            if mha._qkv_same_embed_dim:
                mha.in_proj_weight.copy_(torch.cat(weights))
            else:
                for target, weight in zip((mha.q_proj_weight, mha.k_proj_weight,
                                           mha.v_proj_weight), weights, strict=True):
                    target.copy_(weight)
            biases = [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]
            mha.in_proj_bias.copy_(torch.cat(biases))
            mha.out_proj.weight.copy_(self.out_proj.weight)
            mha.out_proj.bias.copy_(self.out_proj.bias)
        return mha


class MultiHeadSelfAttention(MultiHeadCrossAttention):
    """Multi-head self-attention: the tokens attend to themselves (context = query).

    Shape:
        tokens: (B, N, dim), attention_mask: (N, N) or (B or 1, N, N) bool, True = may attend
        (e.g. :func:`causal_mask`), padding_mask: (B, N) bool, True = real token -> (B, N, dim).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads, kv_dim=dim)

    def forward(self, tokens: Tensor, attention_mask: Tensor | None = None,
                padding_mask: Tensor | None = None,
                return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        return self._attend(tokens, tokens, padding_mask, attention_mask, return_weights,
                            ("tokens", "tokens", "padding_mask"))


class FeedForward(nn.Sequential):
    """The position-wise MLP of a transformer block: Linear -> GELU -> Linear.

    Shape: (..., dim) -> (..., dim), with ``hidden_dim`` units in between.
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        _check_int("dim", dim)
        _check_int("hidden_dim", hidden_dim)
        check_allocation("dim * hidden_dim", dim * hidden_dim, MAX_ELEMENTS, "weights")
        dropout = _check_dropout(dropout)
        super().__init__(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden_dim, dim))


class TransformerBlock(nn.Module):
    """A pre-norm transformer block: x + SelfAttn(LN(x)), then x + FF(LN(x)).

    Args:
        dim: token width; num_heads: attention heads; mlp_ratio: feed-forward width / dim;
        dropout: dropout on both residual branches (0 = off).

    Shape:
        tokens: (B, N, dim), attention_mask: (N, N) or (B or 1, N, N) bool, True = may attend,
        padding_mask: (B, N) bool, True = real token -> (B, N, dim);
        ``last_weights``: (B, H, N, N).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        _check_int("dim", dim)
        _check_int("num_heads", num_heads)
        mlp_ratio = check_number("mlp_ratio", mlp_ratio)
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be a positive number, got {mlp_ratio!r}")
        check_allocation("dim * mlp_ratio * dim", round(dim * mlp_ratio) * dim, MAX_ELEMENTS,
                         "weights")
        dropout = _check_dropout(dropout)
        self.dim = dim
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = MultiHeadSelfAttention(dim, num_heads)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, max(1, round(dim * mlp_ratio)), dropout)
        self.dropout = nn.Dropout(dropout)

    @property
    def last_weights(self) -> Tensor | None:
        return self.attention.last_weights

    def forward(self, tokens: Tensor, attention_mask: Tensor | None = None,
                padding_mask: Tensor | None = None) -> Tensor:
        tokens = _check_tokens("tokens", tokens, self.dim, self)  # before the LayerNorm
        attended = self.attention(self.attention_norm(tokens), attention_mask=attention_mask,
                                  padding_mask=padding_mask)
        tokens = tokens + self.dropout(attended)
        return tokens + self.dropout(self.feed_forward(self.feed_forward_norm(tokens)))


class GatedCrossAttentionBlock(nn.Module):
    """Flamingo's gated cross-attention block, inserted between frozen language-model layers.

        h'  = h  + tanh(attn_gate) * CrossAttn(LN(h), media)
        h'' = h' + tanh(ff_gate)   * FF(LN(h'))

    Both gates start at 0, so at initialisation the block is exactly the identity: the frozen
    model behaves as before, and training opens the gates to let vision flow in.

    Shape: h: (B, N, dim), media: (B, M, kv_dim), media_mask: (B, M) bool, True = keep
    -> (B, N, dim).
    """

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None,
                 ff_mult: int = 4) -> None:
        super().__init__()
        _check_int("dim", dim)
        _check_int("ff_mult", ff_mult)
        check_allocation("dim * ff_mult * dim", dim * ff_mult * dim, MAX_ELEMENTS, "weights")
        self.dim = dim
        self.attention_norm = nn.LayerNorm(dim)
        self.cross_attention = MultiHeadCrossAttention(dim, num_heads, kv_dim)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, dim * ff_mult)
        self.attn_gate = nn.Parameter(torch.zeros(()))
        self.ff_gate = nn.Parameter(torch.zeros(()))

    @property
    def last_weights(self) -> Tensor | None:
        return self.cross_attention.last_weights

    def forward(self, h: Tensor, media: Tensor, media_mask: Tensor | None = None) -> Tensor:
        h = _check_tokens("h", h, self.dim, self)  # before the LayerNorm
        media = _check_tokens("media", media, self.cross_attention.kv_dim, self)
        if len(media) != len(h):
            raise ValueError(f"media has batch size {len(media)} but h has {len(h)}")
        if media_mask is not None:
            _check_bool_mask("media_mask", media_mask, [tuple(media.shape[:2])])
        attended = self.cross_attention(self.attention_norm(h), media, context_mask=media_mask)
        h = h + torch.tanh(self.attn_gate) * attended
        return h + torch.tanh(self.ff_gate) * self.feed_forward(self.feed_forward_norm(h))


def encoder_layers(dim: int, num_heads: int, depth: int, mlp_ratio: int = 4) -> nn.ModuleList:
    """``depth`` of PyTorch's own pre-norm encoder layers (GELU, no dropout, batch first).

    The modality encoders (course_lib.vision, course_lib.audio) stack these; each computes what
    :class:`TransformerBlock` computes (tests compare them with copied weights).

    Shape:
        each layer maps (B, N, dim) -> (B, N, dim).
    """
    _check_int("dim", dim)
    _check_int("num_heads", num_heads)
    if dim % num_heads:
        raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
    check_int("depth", depth, minimum=0, maximum=MAX_DEPTH)
    _check_int("mlp_ratio", mlp_ratio)
    check_allocation("dim * mlp_ratio * dim", dim * mlp_ratio * dim, MAX_ELEMENTS, "weights")
    return nn.ModuleList(
        nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=mlp_ratio * dim, dropout=0.0,
                                   activation="gelu", batch_first=True, norm_first=True)
        for _ in range(depth)
    )
