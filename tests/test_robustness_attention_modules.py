"""Robustness of course_lib.attention's modules: sizes are checked before any allocation,
inputs before any LayerNorm, and float64 / numpy / non-contiguous tokens give the float32
answer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    as_float32,
    assert_close_to_float32,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
)
from torch import nn

from course_lib.attention import (
    FeedForward,
    GatedCrossAttentionBlock,
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    TransformerBlock,
    encoder_layers,
)

HUGE = 2**26  # a width whose square no memory holds


def _modules():
    torch.manual_seed(0)
    return {
        "cross": MultiHeadCrossAttention(8, 2, kv_dim=4).eval(),
        "self": MultiHeadSelfAttention(8, 2).eval(),
        "block": TransformerBlock(8, 2).eval(),
        "gated": GatedCrossAttentionBlock(8, 2, kv_dim=4).eval(),
    }


MODULES = _modules()
with torch.no_grad():  # open the gates, so that the gated block is not the identity
    MODULES["gated"].attn_gate.fill_(0.5)
    MODULES["gated"].ff_gate.fill_(0.5)


# ----------------------------------------------------------------------------- constructors
@covers(MultiHeadCrossAttention, MultiHeadSelfAttention, TransformerBlock,
        GatedCrossAttentionBlock)
@given(st.sampled_from(["MultiHeadCrossAttention", "MultiHeadSelfAttention",
                        "TransformerBlock", "GatedCrossAttentionBlock"]),
       st.sampled_from(["dim", "num_heads"]), st.data())
def test_attention_modules_refuse_bad_sizes(module, argument, data):
    kwargs = {"dim": 8, "num_heads": 2}
    kwargs[argument] = data.draw(bad_int(1, HUGE if argument == "dim" else 8))
    assert_rejects(globals()[module], argument, **kwargs)


@covers(MultiHeadCrossAttention, GatedCrossAttentionBlock)
@given(bad_int(1, HUGE))
def test_cross_attention_refuses_a_bad_kv_dim(kv_dim):
    assert_rejects(MultiHeadCrossAttention, "kv_dim", 8, 2, kv_dim)
    assert_rejects(GatedCrossAttentionBlock, "kv_dim", 8, 2, kv_dim)


@covers(TransformerBlock, FeedForward)
@given(st.sampled_from(["mlp_ratio", "dropout"]), st.data())
def test_transformer_block_refuses_bad_ratios(argument, data):
    bad = {"mlp_ratio": st.one_of(not_a_number(), st.floats(-9, 0), st.floats(1e8, 1e300)),
           "dropout": st.one_of(not_a_number(), st.floats(1, 9), st.floats(-9, -1e-9))}
    value = data.draw(bad[argument])
    assert_rejects(TransformerBlock, argument, 8, 2, **{argument: value})
    if argument == "dropout":
        assert_rejects(FeedForward, "dropout", 8, 16, value)


@covers(FeedForward, GatedCrossAttentionBlock)
@given(st.sampled_from(["dim", "hidden_dim"]), bad_int(1, HUGE))
def test_feed_forward_refuses_bad_widths(argument, value):
    kwargs = {"dim": 8, "hidden_dim": 16, argument: value}
    assert_rejects(FeedForward, argument, **kwargs)
    assert_rejects(GatedCrossAttentionBlock, "ff_mult", 8, 2, ff_mult=value)


@covers(FeedForward)
@given(float_tensors((2, 3, 8)))
def test_feed_forward_is_linear_gelu_linear(tokens):
    torch.manual_seed(0)
    ff = FeedForward(8, 16)
    x = as_float32(tokens)
    expected = ff[3](F_gelu(ff[0](x)))
    torch.testing.assert_close(ff(x), expected)


def F_gelu(x):  # noqa: N802 - GELU by its erf formula, independent of nn.GELU
    return 0.5 * x * (1 + torch.erf(x / 2**0.5))


@covers(encoder_layers)
@given(st.sampled_from(["dim", "num_heads", "depth", "mlp_ratio"]), st.data())
def test_encoder_layers_refuse_bad_sizes(argument, data):
    kwargs = {"dim": 8, "num_heads": 2, "depth": 1, "mlp_ratio": 2}
    bad = {"dim": bad_int(1, HUGE), "num_heads": bad_int(1, 8),
           "depth": bad_int(0, 1024), "mlp_ratio": bad_int(1, HUGE)}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(encoder_layers, argument, **kwargs)


@covers(encoder_layers)
@given(st.integers(0, 3))
def test_encoder_layers_stack_depth_pytorch_layers(depth):
    layers = encoder_layers(8, 2, depth)
    assert len(layers) == depth
    assert all(isinstance(layer, nn.TransformerEncoderLayer) for layer in layers)


# ----------------------------------------------------------------------------- forward
def _inputs(kind: str, batch: int, n: int, m: int, draw) -> dict:
    tokens = draw(float_tensors((batch, n, 8)))
    context = draw(float_tensors((batch, m, 4)))
    return {"cross": {"query_tokens": tokens, "context_tokens": context},
            "self": {"tokens": tokens}, "block": {"tokens": tokens},
            "gated": {"h": tokens, "media": context}}[kind]


@covers(MultiHeadCrossAttention.forward, MultiHeadSelfAttention.forward,
        TransformerBlock.forward, GatedCrossAttentionBlock.forward)
@given(st.sampled_from(list(MODULES)), st.integers(0, 2), st.integers(0, 3),
       st.integers(1, 3), st.data())
def test_modules_accept_the_dtype_policy_types(kind, batch, n, m, data):
    inputs = _inputs(kind, batch, n, m, data.draw)
    module = MODULES[kind]
    with torch.no_grad():
        got = module(**inputs)
        expected = module(**{k: as_float32(v) for k, v in inputs.items()})
    assert got.shape == (batch, n, 8)
    assert_close_to_float32(got, expected)


@covers(MultiHeadCrossAttention.forward, MultiHeadSelfAttention.forward,
        TransformerBlock.forward, GatedCrossAttentionBlock.forward)
@given(st.sampled_from(list(MODULES)), st.data())
def test_modules_refuse_bad_tokens_before_any_layer_norm(kind, data):
    inputs = _inputs(kind, 2, 3, 5, data.draw)
    argument = data.draw(st.sampled_from(sorted(inputs)))
    width = 4 if argument in ("context_tokens", "media") else 8
    inputs[argument] = data.draw(st.one_of(
        not_a_tensor(), tensor_of_dtype((2, 3, width), NOT_FLOAT),
        st.sampled_from([torch.zeros(2, 3, width + 1), torch.zeros(2, 3, width - 1),
                         torch.zeros(3, width), torch.zeros(1, 2, 3, width)])))
    assert_rejects(MODULES[kind], argument, **inputs)


@covers(MultiHeadCrossAttention.forward, MultiHeadSelfAttention.forward,
        GatedCrossAttentionBlock.forward, TransformerBlock.forward)
@given(st.sampled_from([("cross", "context_mask"), ("self", "padding_mask"),
                        ("block", "padding_mask"), ("gated", "media_mask"),
                        ("cross", "attention_mask"), ("self", "attention_mask")]),
       st.one_of(st.just(torch.ones(2, 5)), st.just(torch.ones(2, 4, dtype=torch.bool)),
                 st.just(torch.ones(2, 5, dtype=torch.int64)), st.just([[True] * 5] * 2),
                 st.just(torch.ones(3, 2, 5, dtype=torch.bool))))
def test_modules_refuse_bad_masks_by_their_own_name(case, mask):
    kind, argument = case
    inputs = {"cross": {"query_tokens": torch.randn(2, 3, 8),
                        "context_tokens": torch.randn(2, 5, 4)},
              "self": {"tokens": torch.randn(2, 5, 8)}, "block": {"tokens": torch.randn(2, 5, 8)},
              "gated": {"h": torch.randn(2, 3, 8), "media": torch.randn(2, 5, 4)}}[kind]
    assert_rejects(MODULES[kind], argument, **inputs, **{argument: mask})


@covers(MultiHeadCrossAttention.forward)
@given(st.one_of(st.none(), st.integers(0, 1), st.text(max_size=2)))
def test_return_weights_must_be_a_flag(flag):
    assert_rejects(MODULES["cross"], "return_weights", torch.randn(1, 2, 8),
                   torch.randn(1, 3, 4), return_weights=flag)


# ----------------------------------------------------------------------------- conversion
@covers(MultiHeadCrossAttention.load_from_torch, MultiHeadCrossAttention.to_torch)
@given(st.one_of(st.none(), st.just(nn.Linear(8, 8)), st.just(nn.MultiheadAttention(8, 4)),
                 st.just(nn.MultiheadAttention(8, 2, bias=False))))
def test_load_from_torch_refuses_what_does_not_fit(mha):
    assert_rejects(MultiHeadCrossAttention(8, 2).load_from_torch, "mha", mha)


@covers(MultiHeadCrossAttention.load_from_torch, MultiHeadCrossAttention.to_torch)
@given(st.sampled_from([(8, 2, None), (8, 4, 6), (4, 1, 4)]), st.integers(1, 3))
def test_to_torch_and_back_gives_pytorch_s_output(sizes, n):
    dim, heads, kv_dim = sizes
    torch.manual_seed(n)
    ours = MultiHeadCrossAttention(dim, heads, kv_dim)
    theirs = ours.to_torch()
    query, context = torch.randn(2, n, dim), torch.randn(2, 3, kv_dim or dim)
    expected, _ = theirs(query, context, context)
    torch.testing.assert_close(ours(query, context), expected, rtol=1e-4, atol=1e-5)
    again = MultiHeadCrossAttention(dim, heads, kv_dim).load_from_torch(theirs)
    torch.testing.assert_close(again(query, context), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_modules_built_in_another_dtype_cast_inputs_to_it(dtype):
    block = TransformerBlock(8, 2).to(dtype).eval()
    out = block(torch.randn(1, 3, 8))
    assert out.dtype == dtype
