"""Attention from scratch: the formula, multi-head self- and cross-attention, masks, blocks.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Queries ask, keys answer "how relevant am I?", values carry what is passed on. When the
queries come from one modality (text tokens) and the keys and values from another (image
patches), the same formula is *cross-attention*, the core of hybrid fusion.

Boolean masks follow ``torch.nn.functional.scaled_dot_product_attention``: **True = may
attend**. ``torch.nn.MultiheadAttention`` uses the opposite (True = blocked); convert with
:func:`to_torch_mha_mask`. Every module here keeps its last attention weights for plotting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib._validation import (
    MAX_ELEMENTS,
    MAX_TOKENS,
    ArgumentTypeError,
    check_allocation,
    check_distribution,
    check_flag,
    check_int,
    check_number,
    check_tensor,
    describe,
    to_weights_dtype,
)

MAX_DEPTH = 1_024  # transformer layers in one stack

__all__ = [
    "AttentionSteps", "attention_steps", "scaled_dot_product_attention", "causal_mask",
    "padding_mask", "to_torch_mha_mask", "MultiHeadCrossAttention", "MultiHeadSelfAttention",
    "FeedForward", "TransformerBlock", "GatedCrossAttentionBlock", "ExplorerState",
    "explore_attention", "attention_entropy", "attention_map_over_image",
]


# ----------------------------------------------------------------------------- the formula
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


# ----------------------------------------------------------------------------- masks
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


# ----------------------------------------------------------------------------- modules
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


# ----------------------------------------------------------------------------- widget logic
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
