"""Multi-head self-/cross-attention, the transformer block and the gated block vs PyTorch."""

import pytest
import torch
from torch import nn

from course_lib.attention import (
    GatedCrossAttentionBlock,
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    TransformerBlock,
    causal_mask,
    padding_mask,
    to_torch_mha_mask,
)

CASES = [  # (dim, num_heads, kv_dim, B, N, M)
    (8, 2, None, 2, 3, 5),
    (16, 4, 12, 3, 4, 7),
    (512, 8, 768, 1, 10, 196),
    (6, 1, 3, 2, 1, 1),
]


def torch_mha(dim, num_heads, kv_dim, seed):
    torch.manual_seed(seed)
    kv_dim = dim if kv_dim is None else kv_dim
    return nn.MultiheadAttention(dim, num_heads, kdim=kv_dim, vdim=kv_dim, batch_first=True).eval()


@pytest.mark.parametrize("dim, num_heads, kv_dim, batch, n, m", CASES)
@pytest.mark.parametrize("with_masks", [False, True])
def test_cross_attention_matches_torch_multihead_attention(dim, num_heads, kv_dim, batch, n, m,
                                                           with_masks):
    reference = torch_mha(dim, num_heads, kv_dim, seed=dim + m)
    ours = MultiHeadCrossAttention(dim, num_heads, kv_dim).load_from_torch(reference)
    generator = torch.Generator().manual_seed(n)
    query_tokens = torch.randn(batch, n, dim, generator=generator)
    context_tokens = torch.randn(batch, m, kv_dim or dim, generator=generator)
    context_mask = attention_mask = None
    torch_kwargs = {}
    if with_masks:
        context_mask = padding_mask(torch.randint(1, m + 1, (batch,), generator=generator), m)
        attention_mask = torch.rand(n, m, generator=generator) > 0.4
        attention_mask[:, 0] = True  # every query keeps at least the first (real) token
        torch_kwargs = dict(key_padding_mask=to_torch_mha_mask(context_mask),
                            attn_mask=to_torch_mha_mask(attention_mask))
    output, weights = ours(query_tokens, context_tokens, context_mask=context_mask,
                           attention_mask=attention_mask, return_weights=True)
    expected, expected_weights = reference(query_tokens, context_tokens, context_tokens,
                                           average_attn_weights=False, **torch_kwargs)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=1e-5)
    assert output.shape == (batch, n, dim)
    assert ours.last_weights.shape == (batch, num_heads, n, m)


def test_per_example_attention_mask_matches_torch():
    reference = torch_mha(8, 2, None, seed=0)
    ours = MultiHeadSelfAttention(8, 2).load_from_torch(reference)
    tokens = torch.randn(3, 5, 8)
    mask = torch.rand(3, 5, 5) > 0.5
    mask[..., 0] = True
    torch_mask = to_torch_mha_mask(mask).repeat_interleave(2, dim=0)  # (B * H, N, N)
    expected, _ = reference(tokens, tokens, tokens, attn_mask=torch_mask)
    torch.testing.assert_close(ours(tokens, attention_mask=mask), expected, atol=1e-5, rtol=1e-5)


def test_to_torch_builds_an_equivalent_multihead_attention():
    for kv_dim in (None, 5):
        ours = MultiHeadCrossAttention(8, 4, kv_dim)
        reference = ours.to_torch().eval()
        query_tokens, context = torch.randn(2, 3, 8), torch.randn(2, 6, kv_dim or 8)
        expected, _ = reference(query_tokens, context, context)
        torch.testing.assert_close(ours(query_tokens, context), expected, atol=1e-5, rtol=1e-5)


def test_forgetting_the_opposite_convention_of_torch_mha_gives_different_outputs():
    reference = torch_mha(8, 2, None, seed=1)
    ours = MultiHeadSelfAttention(8, 2).load_from_torch(reference)
    tokens = torch.randn(1, 4, 8)
    right = ours(tokens, attention_mask=causal_mask(4))
    wrong, wrong_weights = reference(tokens, tokens, tokens, attn_mask=causal_mask(4))
    assert not torch.allclose(right, wrong, atol=1e-3)
    assert torch.isnan(wrong[0, -1]).all()  # the last token may attend to nothing: NaN


def test_self_attention_weights_are_causal_and_rows_sum_to_one():
    attention = MultiHeadSelfAttention(16, 4)
    _, weights = attention(torch.randn(2, 6, 16), attention_mask=causal_mask(6),
                           return_weights=True)
    assert weights.shape == (2, 4, 6, 6)
    assert torch.all(weights.triu(diagonal=1) == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6))


def test_cross_attention_ignores_padded_context_tokens():
    attention = MultiHeadCrossAttention(8, 2, kv_dim=4)
    query_tokens, context = torch.randn(2, 3, 8), torch.randn(2, 5, 4)
    keep = padding_mask([3, 5], max_len=5)
    before = attention(query_tokens, context, context_mask=keep)
    context[0, 3:] = 100.0  # change only the padding of the first example
    after = attention(query_tokens, context, context_mask=keep)
    torch.testing.assert_close(before, after)
    assert torch.all(attention.last_weights[0, :, :, 3:] == 0)


# ----------------------------------------------------------------------------- transformer block
def test_transformer_block_matches_torch_pre_norm_encoder_layer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=64, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True).eval()
    block = TransformerBlock(16, 4, mlp_ratio=4).eval()
    block.attention.load_from_torch(layer.self_attn)
    with torch.no_grad():
        for ours, theirs in ((block.attention_norm, layer.norm1), (block.feed_forward_norm,
                             layer.norm2), (block.feed_forward[0], layer.linear1),
                             (block.feed_forward[3], layer.linear2)):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    tokens = torch.randn(2, 7, 16)
    mask = causal_mask(7)
    expected = layer(tokens, src_mask=to_torch_mha_mask(mask))
    torch.testing.assert_close(block(tokens, attention_mask=mask), expected, atol=1e-5, rtol=1e-5)
    assert block.last_weights.shape == (2, 4, 7, 7)


def test_transformer_block_under_a_causal_mask_does_not_see_the_future():
    block = TransformerBlock(8, 2).eval()
    tokens = torch.randn(1, 5, 8)
    changed = tokens.clone()
    changed[0, 3:] = torch.randn(2, 8)
    before = block(tokens, attention_mask=causal_mask(5))
    after = block(changed, attention_mask=causal_mask(5))
    torch.testing.assert_close(before[0, :3], after[0, :3])
    assert not torch.allclose(before[0, 3:], after[0, 3:])


def test_transformer_block_padding_mask_keeps_real_tokens_unaffected_by_padding():
    block = TransformerBlock(8, 2).eval()
    tokens = torch.randn(2, 4, 8)
    keep = padding_mask([2, 4], max_len=4)
    before = block(tokens, padding_mask=keep)
    tokens[0, 2:] = -50.0
    after = block(tokens, padding_mask=keep)
    torch.testing.assert_close(before[0, :2], after[0, :2])


# ----------------------------------------------------------------------------- gated block
def test_gated_block_is_exactly_the_identity_at_initialisation():
    block = GatedCrossAttentionBlock(16, 4, kv_dim=12)
    h, media = torch.randn(2, 5, 16), torch.randn(2, 9, 12)
    assert block.attn_gate.item() == 0.0 and block.ff_gate.item() == 0.0
    assert torch.equal(block(h, media), h)
    assert torch.equal(block(h, media, media_mask=padding_mask([9, 4], 9)), h)


def test_gated_block_gates_receive_nonzero_gradients_at_initialisation():
    block = GatedCrossAttentionBlock(16, 4, kv_dim=12)
    h, media = torch.randn(2, 5, 16), torch.randn(2, 9, 12)
    target = torch.randn(2, 5, 16)
    loss = (block(h, media) - target).pow(2).mean()
    loss.backward()
    assert block.attn_gate.grad.abs().item() > 1e-6
    assert block.ff_gate.grad.abs().item() > 1e-6
    # With closed gates nothing reaches the cross-attention weights yet.
    assert torch.all(block.cross_attention.q_proj.weight.grad == 0)


def test_gated_block_follows_the_flamingo_formula_when_gates_are_open():
    block = GatedCrossAttentionBlock(8, 2, kv_dim=4, ff_mult=2)
    with torch.no_grad():
        block.attn_gate.fill_(1.0)
        block.ff_gate.fill_(-0.5)
    h, media = torch.randn(1, 3, 8), torch.randn(1, 6, 4)
    gate = torch.tanh(torch.tensor(1.0))
    assert gate.item() == pytest.approx(0.7616, abs=1e-4)
    h1 = h + gate * block.cross_attention(block.attention_norm(h), media)
    expected = h1 + torch.tanh(torch.tensor(-0.5)) * block.feed_forward(
        block.feed_forward_norm(h1))
    torch.testing.assert_close(block(h, media), expected)
    assert block.last_weights.shape == (1, 2, 3, 6)


# ----------------------------------------------------------------------------- bad inputs
def test_bad_module_arguments_raise_naming_the_argument():
    with pytest.raises(ValueError, match="dim 10 is not divisible by num_heads 4"):
        MultiHeadCrossAttention(10, 4)
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadSelfAttention(8, 0)
    with pytest.raises(ValueError, match="kv_dim"):
        MultiHeadCrossAttention(8, 2, kv_dim=-3)
    with pytest.raises(ValueError, match="mlp_ratio"):
        TransformerBlock(8, 2, mlp_ratio=0)
    with pytest.raises(ValueError, match="dropout"):
        TransformerBlock(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match="ff_mult"):
        GatedCrossAttentionBlock(8, 2, ff_mult=0)
    with pytest.raises(ValueError, match="expected"):
        MultiHeadCrossAttention(8, 2).load_from_torch(nn.MultiheadAttention(8, 4))


def test_bad_forward_inputs_raise_naming_the_argument():
    attention = MultiHeadCrossAttention(8, 2, kv_dim=4)
    query_tokens, context = torch.randn(2, 3, 8), torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="query_tokens must have shape"):
        attention(torch.randn(2, 3, 7), context)
    with pytest.raises(ValueError, match="context_tokens must have shape"):
        attention(query_tokens, torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="context_tokens has batch size 1"):
        attention(query_tokens, context[:1])
    with pytest.raises(ValueError, match="context_mask has shape"):
        attention(query_tokens, context, context_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="context_mask must be a bool"):
        attention(query_tokens, context, context_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        attention(query_tokens, context, attention_mask=torch.ones(5, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="tokens must have shape"):
        TransformerBlock(8, 2)(torch.randn(3, 8))
