"""The attention formula and the mask helpers, checked against hand formulas and PyTorch."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import (
    attention_steps,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    to_torch_mha_mask,
)

Q_T = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
K_V = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
V_V = torch.tensor([[0.5, 0.3], [0.1, 0.8], [0.9, 0.2]])


def hand_softmax(row):
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def random_keep_mask(shape, generator):
    """A random bool mask (True = may attend) with at least one open key in every row."""
    mask = torch.rand(shape, generator=generator) > 0.5
    mask[..., 0] = True
    return mask


# ----------------------------------------------------------------------------- worked example
def test_worked_example_scores_match_the_hand_product():
    steps = attention_steps(Q_T, K_V, V_V)
    assert steps.scores.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    assert steps.scale == pytest.approx(1 / math.sqrt(2))
    assert steps.scaled_scores[0, 0].item() == pytest.approx(0.70710678, abs=1e-6)


def test_worked_example_weights_match_a_hand_softmax_with_math_exp():
    a = 1 / math.sqrt(2)
    expected = [hand_softmax([a, 0.0, a]), hand_softmax([a, a, 0.0])]
    steps = attention_steps(Q_T, K_V, V_V)
    torch.testing.assert_close(steps.weights, torch.tensor(expected), atol=1e-6, rtol=0)
    assert [round(w, 4) for w in expected[0]] == [0.4011, 0.1978, 0.4011]
    # The often quoted rounding 0.39 / 0.19 / 0.39 does not sum to 1.
    assert sum([0.39, 0.19, 0.39]) == pytest.approx(0.97)


def test_worked_example_output_is_the_weighted_sum_of_value_rows():
    a = 1 / math.sqrt(2)
    expected = []
    for row in ([a, 0.0, a], [a, a, 0.0]):
        w = hand_softmax(row)
        expected.append([sum(w[j] * V_V[j, c].item() for j in range(3)) for c in range(2)])
    output, _ = scaled_dot_product_attention(Q_T, K_V, V_V)
    torch.testing.assert_close(output, torch.tensor(expected), atol=1e-6, rtol=0)
    assert output[0].tolist() == pytest.approx([0.5813, 0.3588], abs=1e-4)


# ----------------------------------------------------------------------------- against PyTorch
SHAPES = [  # (batch dims, N, M, d_k, d_v)
    ((), 2, 3, 2, 2),
    ((4,), 5, 7, 8, 3),
    ((2, 3), 10, 196, 16, 16),
    ((1, 2), 1, 1, 4, 6),
]


@pytest.mark.parametrize("batch, n, m, d_k, d_v", SHAPES)
@pytest.mark.parametrize("with_mask", [False, True])
def test_matches_torch_scaled_dot_product_attention(batch, n, m, d_k, d_v, with_mask):
    generator = torch.Generator().manual_seed(n * m + d_k)
    query = torch.randn(*batch, n, d_k, generator=generator)
    key = torch.randn(*batch, m, d_k, generator=generator)
    value = torch.randn(*batch, m, d_v, generator=generator)
    mask = random_keep_mask((*batch, n, m), generator) if with_mask else None
    output, weights = scaled_dot_product_attention(query, key, value, mask=mask)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)
    assert weights.shape == (*batch, n, m)


def test_matches_torch_with_a_broadcast_mask_and_a_custom_scale():
    generator = torch.Generator().manual_seed(1)
    query, key, value = (torch.randn(2, 3, 4, 8, generator=generator) for _ in range(3))
    mask = random_keep_mask((4, 4), generator)  # (N, M) shared by every batch and head
    output, _ = scaled_dot_product_attention(query, key, value, mask=mask, scale=0.3)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


def test_causal_mask_matches_torch_is_causal():
    generator = torch.Generator().manual_seed(2)
    query, key, value = (torch.randn(3, 6, 4, generator=generator) for _ in range(3))
    output, _ = scaled_dot_product_attention(query, key, value, mask=causal_mask(6))
    expected = F.scaled_dot_product_attention(query, key, value, is_causal=True)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- properties
def test_weight_rows_sum_to_one_and_masked_positions_get_zero():
    generator = torch.Generator().manual_seed(3)
    query, key, value = (torch.randn(2, 5, 4, generator=generator) for _ in range(3))
    mask = random_keep_mask((2, 5, 5), generator)
    _, weights = scaled_dot_product_attention(query, key, value, mask=mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))
    assert torch.all(weights[~mask] == 0)
    assert torch.all(weights[mask] > 0)


def test_fully_masked_row_gives_zeros_not_nan():
    generator = torch.Generator().manual_seed(4)
    query = torch.randn(3, 4, generator=generator, requires_grad=True)
    key, value = torch.randn(5, 4, generator=generator), torch.randn(5, 2, generator=generator)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    output, weights = scaled_dot_product_attention(query, key, value, mask=mask)
    assert torch.equal(weights[1], torch.zeros(5))
    assert torch.equal(output[1], torch.zeros(2))
    torch.testing.assert_close(weights[[0, 2]].sum(-1), torch.ones(2))
    output.sum().backward()
    assert torch.isfinite(query.grad).all()


def test_steps_expose_minus_infinity_where_the_mask_blocks():
    mask = torch.tensor([[True, False, True], [True, True, False]])
    steps = attention_steps(Q_T, K_V, V_V, mask=mask)
    assert torch.isinf(steps.masked_scores[~mask]).all()
    torch.testing.assert_close(steps.masked_scores[mask], steps.scaled_scores[mask])


# ----------------------------------------------------------------------------- masks
def test_causal_mask_lets_each_token_see_itself_and_the_past_only():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[i >= j for j in range(4)] for i in range(4)]


def test_padding_mask_marks_real_tokens():
    mask = padding_mask(torch.tensor([3, 1, 0]), max_len=4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False],
                             [False] * 4]
    assert padding_mask([2, 3]).shape == (2, 3)


def test_to_torch_mha_mask_flips_the_convention():
    mask = causal_mask(3)
    assert torch.equal(to_torch_mha_mask(mask), ~mask)
    assert to_torch_mha_mask(mask)[0, 1].item() is True  # blocked in PyTorch's MHA convention


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "query, key, value, mask, scale, argument",
    [
        (torch.ones(2, 3), torch.ones(4, 5), torch.ones(4, 2), None, None, "query has width 3"),
        (torch.ones(2, 3), torch.ones(4, 3), torch.ones(5, 2), None, None, "value has 5"),
        (torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2), torch.ones(2, 5, dtype=torch.bool),
         None, "mask has shape"),
        (torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2), torch.ones(3, 4, dtype=torch.bool),
         None, "mask has shape"),
        (torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2), torch.ones(2, 4), None,
         "mask must be a bool"),
        (torch.ones(3), torch.ones(4, 3), torch.ones(4, 2), None, None, "query must have shape"),
        (torch.ones(2, 2, 3), torch.ones(3, 4, 3), torch.ones(3, 4, 2), None, None,
         "leading dimensions"),
        (torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2), None, -1.0, "scale"),
    ],
)
def test_bad_attention_inputs_raise_naming_the_argument(query, key, value, mask, scale, argument):
    with pytest.raises(ValueError, match=argument):
        scaled_dot_product_attention(query, key, value, mask=mask, scale=scale)


def test_bad_mask_helper_inputs_raise():
    with pytest.raises(ValueError, match="n must be"):
        causal_mask(0)
    with pytest.raises(ValueError, match="max_len 2 is shorter"):
        padding_mask([3, 1], max_len=2)
    with pytest.raises(ValueError, match="lengths must be a 1-D tensor of integers"):
        padding_mask(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="lengths must be non-negative"):
        padding_mask([-1])
    with pytest.raises(ValueError, match="mask must be a bool"):
        to_torch_mha_mask(torch.ones(2, 2))
