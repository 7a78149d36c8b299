"""What a longer sequence costs: attention and MLP FLOPs, and the K/V cache.

FLOPs are counted as 2 per multiply-add, as ``torch.utils.flop_counter.FlopCounterMode``
counts them (the tests compare with it). :func:`attention_cost` is one attention sublayer
stack, :func:`mlp_cost` one feed-forward stack (SwiGLU or a plain two-layer MLP), and
:func:`image_scaling_costs` puts them together for LLaVA-style concatenation and
Flamingo-style cross-attention as images are added. The vision encoder is left out: it
encodes the same pixels in both designs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from course_lib._validation import check_flag
from course_lib.budget_counts import _check_int


@dataclass(frozen=True)
class AttentionCost:
    """FLOPs of the attention sublayers of ``depth`` layers and the K/V cache they keep."""

    score_flops: int  # Q K^T and weights @ V: quadratic in the sequence length
    projection_flops: int  # the Q, K, V and output projections: linear in it
    kv_cache_bytes: int

    def __post_init__(self) -> None:
        for name in ("score_flops", "projection_flops", "kv_cache_bytes"):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), 0))

    @property
    def total_flops(self) -> int:
        return self.score_flops + self.projection_flops


def attention_cost(sequence_length: int, width: int, depth: int, key_length: int | None = None,
                   bytes_per_value: int = 2) -> AttentionCost:
    """Cost of full (dense) attention over a sequence, counted as 2 FLOPs per multiply-add.

    Per layer: the Q and output projections cost 2 N D^2 each, K and V 2 M D^2 each; Q K^T
    and weights @ V cost 2 N M D each. The cache holds K and V: 2 M D values per layer.
    ``key_length`` M defaults to N (self-attention); set it for cross-attention. A causal
    kernel can skip about half of the score FLOPs; this counts the dense product.

    Shape:
        queries ``(N, D)``, keys/values ``(M, D)`` in each of ``depth`` layers.
    """
    _check_int("sequence_length", sequence_length, 0)
    _check_int("width", width, 1)
    _check_int("depth", depth, 0)
    _check_int("bytes_per_value", bytes_per_value, 1)
    queries = sequence_length
    keys = sequence_length if key_length is None else _check_int("key_length", key_length, 0)
    return AttentionCost(
        score_flops=depth * 4 * queries * keys * width,
        projection_flops=depth * 2 * width * width * (2 * queries + 2 * keys),
        kv_cache_bytes=depth * 2 * keys * width * bytes_per_value,
    )


def mlp_cost(sequence_length: int, width: int, ffn_width: int, depth: int,
             gated: bool = True) -> int:
    """FLOPs of ``depth`` feed-forward sublayers applied to each of ``sequence_length`` positions.

    SwiGLU (``gated=True``, LLaMA / Vicuna / Mistral): ``down(silu(gate(x)) * up(x))``, three
    ``D x F`` matrices, 6 N D F FLOPs per layer. A plain MLP (``gated=False``, Flamingo's
    dense and resampler blocks): ``down(gelu(up(x)))``, 4 N D F. Element-wise activations
    are not counted (FlopCounterMode does not count them either).

    Shape:
        ``(N, D) -> (N, F) -> (N, D)`` in each of ``depth`` layers.
    """
    _check_int("sequence_length", sequence_length, 0)
    _check_int("width", width, 1)
    _check_int("ffn_width", ffn_width, 1)
    _check_int("depth", depth, 0)
    gated = check_flag("gated", gated)
    return depth * (6 if gated else 4) * sequence_length * width * ffn_width


COST_KEYS = ("num_images", "llava_sequence", "llava_attention_flops", "llava_mlp_flops",
             "llava_flops", "llava_kv_bytes", "flamingo_sequence", "flamingo_attention_flops",
             "flamingo_mlp_flops", "flamingo_flops", "flamingo_kv_bytes")


def image_scaling_costs(num_images: Sequence[int], text_tokens: int = 50,
                        tokens_per_image: int = 576, num_latents: int = 64, width: int = 4096,
                        depth: int = 32, cross_attention_every: int = 4,
                        resampler_depth: int = 6, bytes_per_value: int = 2,
                        ffn_width: int = 11008, dense_ffn_multiplier: int = 4
                        ) -> dict[str, list]:
    """FLOPs (attention and MLP) and K/V memory as images are added, LLaVA vs Flamingo style.

    LLaVA-style: every image's ``tokens_per_image`` tokens join the LM's sequence, so each of
    the ``depth`` layers runs attention and its SwiGLU MLP (width ``ffn_width``; Vicuna-7B:
    11008) over ``text_tokens + n * tokens_per_image`` positions.
    Flamingo-style: the LM's sequence holds the text plus one ``<image>`` marker per image
    (its own attention and SwiGLU MLP run over those); a resampler (``resampler_depth``
    layers, ``num_latents`` queries attending to the image tokens and the latents, then a
    plain MLP of ``dense_ffn_multiplier x width``) compresses each image; every
    ``cross_attention_every``-th layer adds a cross-attention from the LM's sequence to all
    ``n * num_latents`` latents followed by its own plain MLP (Flamingo's gated
    XATTN-DENSE block). The vision encoder is the same in both and left out.

    Returns:
        lists, one entry per element of ``num_images``, under :data:`COST_KEYS`:
        ``*_sequence`` (LM positions), ``*_attention_flops``, ``*_mlp_flops``, ``*_flops``
        (their sum) and ``*_kv_bytes`` (the K/V cache: the LM's and the cross-attention's).
    """
    _check_int("cross_attention_every", cross_attention_every, 1)
    for name, value in (("text_tokens", text_tokens), ("tokens_per_image", tokens_per_image),
                        ("num_latents", num_latents), ("resampler_depth", resampler_depth)):
        _check_int(name, value, 0)
    _check_int("ffn_width", ffn_width, 1)
    _check_int("dense_ffn_multiplier", dense_ffn_multiplier, 1)
    if isinstance(num_images, (str, bytes)) or not isinstance(num_images, Sequence):
        raise ValueError(f"num_images must be a list of image counts, got "
                         f"{type(num_images).__name__}")
    if len(num_images) > 100_000:
        raise ValueError(f"num_images must hold at most 100,000 counts, got {len(num_images):,}")
    _check_int("depth", depth, 1)
    _check_int("width", width, 1)
    result: dict[str, list] = {key: [] for key in COST_KEYS}
    cross_layers = depth // cross_attention_every
    dense_width = dense_ffn_multiplier * width
    for count in num_images:
        _check_int("num_images", count, 0)
        llava_length = text_tokens + count * tokens_per_image
        llava = attention_cost(llava_length, width, depth, bytes_per_value=bytes_per_value)
        llava_mlp = mlp_cost(llava_length, width, ffn_width, depth)
        lm_length = text_tokens + count
        lm = attention_cost(lm_length, width, depth, bytes_per_value=bytes_per_value)
        layers = cross_layers if count else 0
        cross = attention_cost(lm_length, width, layers, key_length=count * num_latents,
                               bytes_per_value=bytes_per_value)
        resampler = attention_cost(num_latents, width, resampler_depth,
                                   key_length=tokens_per_image + num_latents)
        flamingo_mlp = (mlp_cost(lm_length, width, ffn_width, depth)
                        + mlp_cost(lm_length, width, dense_width, layers, gated=False)
                        + count * mlp_cost(num_latents, width, dense_width, resampler_depth,
                                           gated=False))
        flamingo_attention = lm.total_flops + cross.total_flops + count * resampler.total_flops
        row = {"num_images": count, "llava_sequence": llava_length,
               "llava_attention_flops": llava.total_flops, "llava_mlp_flops": llava_mlp,
               "llava_flops": llava.total_flops + llava_mlp,
               "llava_kv_bytes": llava.kv_cache_bytes, "flamingo_sequence": lm_length,
               "flamingo_attention_flops": flamingo_attention, "flamingo_mlp_flops": flamingo_mlp,
               "flamingo_flops": flamingo_attention + flamingo_mlp,
               "flamingo_kv_bytes": lm.kv_cache_bytes + cross.kv_cache_bytes}
        for key, value in row.items():
            result[key].append(value)
    return result
