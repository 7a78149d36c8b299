"""Attention from scratch: the formula, multi-head self- and cross-attention, masks, blocks.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Queries ask, keys answer "how relevant am I?", values carry what is passed on. When the
queries come from one modality (text tokens) and the keys and values from another (image
patches), the same formula is *cross-attention*, the core of hybrid fusion.

Boolean masks follow ``torch.nn.functional.scaled_dot_product_attention``: **True = may
attend**. ``torch.nn.MultiheadAttention`` uses the opposite (True = blocked); convert with
:func:`to_torch_mha_mask`. Every module here keeps its last attention weights for plotting.

Import everything from here; each idea lives in its own module:

- :mod:`course_lib.attention_formula`: :func:`attention_steps` (every intermediate matrix),
  :func:`scaled_dot_product_attention`;
- :mod:`course_lib.attention_masks`: :func:`causal_mask`, :func:`padding_mask`,
  :func:`to_torch_mha_mask`;
- :mod:`course_lib.attention_modules`: :class:`MultiHeadCrossAttention`,
  :class:`MultiHeadSelfAttention`, :class:`FeedForward`, :class:`TransformerBlock`,
  :class:`GatedCrossAttentionBlock`, :func:`encoder_layers`;
- :mod:`course_lib.attention_weights`: :func:`attention_entropy`, :func:`explore_attention`,
  :func:`attention_map_over_image` (the explorer's logic).
"""

from __future__ import annotations

from course_lib.attention_formula import (  # noqa: F401 - re-exported
    AttentionSteps,
    _broadcast_shapes,
    attention_steps,
    scaled_dot_product_attention,
)
from course_lib.attention_masks import causal_mask, padding_mask, to_torch_mha_mask
from course_lib.attention_modules import (
    MAX_DEPTH,
    FeedForward,
    GatedCrossAttentionBlock,
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    TransformerBlock,
    encoder_layers,
)
from course_lib.attention_weights import (
    EXAMPLE_KEYS,
    EXAMPLE_QUERIES,
    EXAMPLE_VALUES,
    ExplorerState,
    attention_entropy,
    attention_map_over_image,
    explore_attention,
)

__all__ = [
    "AttentionSteps", "attention_steps", "scaled_dot_product_attention", "causal_mask",
    "padding_mask", "to_torch_mha_mask", "MultiHeadCrossAttention", "MultiHeadSelfAttention",
    "FeedForward", "TransformerBlock", "GatedCrossAttentionBlock", "ExplorerState",
    "explore_attention", "attention_entropy", "attention_map_over_image", "encoder_layers",
    "EXAMPLE_QUERIES", "EXAMPLE_KEYS", "EXAMPLE_VALUES", "MAX_DEPTH",
]
