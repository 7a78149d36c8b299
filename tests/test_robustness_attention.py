"""Robustness of course_lib.attention's formula, masks and explorer helpers: bad arguments are
refused by name; edge cases (empty queries, float64, numpy, non-contiguous) match PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    not_an_int,
    tensor_of_dtype,
)

from course_lib.attention import (
    AttentionSteps,
    ExplorerState,
    attention_entropy,
    attention_map_over_image,
    attention_steps,
    causal_mask,
    explore_attention,
    padding_mask,
    scaled_dot_product_attention,
    to_torch_mha_mask,
)

Q, K, V = torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2)


# ----------------------------------------------------------------------------- the formula
@covers(attention_steps, scaled_dot_product_attention, AttentionSteps)
@given(st.sampled_from(["query", "key", "value"]), st.data())
def test_attention_refuses_bad_tensors(argument, data):
    tensors = {"query": Q, "key": K, "value": V}
    tensors[argument] = data.draw(st.one_of(
        not_a_tensor(), tensor_of_dtype(tuple(tensors[argument].shape), NOT_FLOAT),
        st.just(torch.ones(3))))
    assert_rejects(attention_steps, argument, **tensors)
    assert_rejects(scaled_dot_product_attention, argument, **tensors)


@covers(attention_steps, scaled_dot_product_attention)
@given(st.one_of(not_a_number(), st.floats(-1e9, 0)))
def test_attention_refuses_a_bad_scale(scale):
    if scale is None:
        return  # None means the default scale
    assert_rejects(attention_steps, "scale", Q, K, V, scale=scale)


@covers(attention_steps, scaled_dot_product_attention)
@given(st.one_of(not_a_tensor().filter(lambda v: v is not None),
                 tensor_of_dtype((2, 4), (torch.float32, torch.int64, torch.uint8)),
                 st.just(torch.ones(3, 4, dtype=torch.bool)),
                 st.just(torch.ones(2, 5, dtype=torch.bool))))
def test_attention_refuses_a_bad_mask(mask):
    assert_rejects(scaled_dot_product_attention, "mask", Q, K, V, mask=mask)


@covers(attention_steps, scaled_dot_product_attention, AttentionSteps)
@given(st.integers(0, 3), st.integers(1, 4), st.data())
def test_attention_matches_pytorch_for_any_layout_and_dtype(n, m, data):
    query = data.draw(float_tensors((2, n, 3)))
    key = data.draw(float_tensors((2, m, 3)))
    value = data.draw(float_tensors((2, m, 2)))
    mask = data.draw(st.none() | st.just(torch.rand(2, n, m) > 0.3))
    steps = attention_steps(query, key, value, mask=mask)
    assert isinstance(steps, AttentionSteps)
    q, k, v = (torch.as_tensor(t).double() for t in (query, key, value))
    if mask is not None:
        mask = mask.clone()
        mask[..., 0] = True  # PyTorch gives NaN for a fully masked row; the course gives 0
        steps = attention_steps(query, key, value, mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(steps.output.double(), expected, rtol=1e-4, atol=1e-5)
    assert steps.weights.shape == (2, n, m)


# ----------------------------------------------------------------------------- masks
@covers(causal_mask)
@given(bad_int(1, 16_384))
def test_causal_mask_refuses_a_bad_length(n):
    assert_rejects(causal_mask, "n", n)


@covers(causal_mask)
@given(st.integers(1, 40))
def test_causal_mask_is_the_lower_triangle(n):
    mask = causal_mask(n)
    assert all(mask[i, j].item() == (j <= i) for i in range(n) for j in range(0, n, 7))


@covers(padding_mask)
@given(st.one_of(st.just([1.5]), st.just([True, False]), st.just(["a"]), st.just([[1, 2]]),
                 st.just(torch.tensor([1.0])), st.just(torch.tensor([[1]])), st.just([-1]),
                 st.none(), st.just(np.array([0.5]))))
def test_padding_mask_refuses_bad_lengths(lengths):
    assert_rejects(padding_mask, "lengths", lengths)


@covers(padding_mask)
@given(bad_int(0, 16_384).filter(lambda v: v is not None))
def test_padding_mask_refuses_a_bad_max_len(max_len):
    assert_rejects(padding_mask, "max_len", [2, 0], max_len)


def test_padding_mask_refuses_a_huge_default_length():
    assert_rejects(padding_mask, "lengths", [10**12])


@covers(padding_mask)
@given(st.lists(st.integers(0, 6), max_size=4), st.sampled_from(["list", "tensor", "numpy"]))
def test_padding_mask_keeps_the_first_length_tokens(lengths, kind):
    given_lengths = {"list": lengths, "tensor": torch.tensor(lengths, dtype=torch.long),
                     "numpy": np.array(lengths, dtype=np.int64)}[kind]
    mask = padding_mask(given_lengths, max_len=6)
    assert mask.shape == (len(lengths), 6)
    assert mask.tolist() == [[j < length for j in range(6)] for length in lengths]


@covers(to_torch_mha_mask)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((2, 2), (torch.float32, torch.int64))))
def test_to_torch_mha_mask_refuses_what_is_not_a_bool_mask(mask):
    assert_rejects(to_torch_mha_mask, "mask", mask)


@covers(to_torch_mha_mask)
@given(st.integers(0, 4), st.integers(0, 4))
def test_to_torch_mha_mask_inverts_any_bool_mask(rows, cols):
    mask = torch.rand(rows, cols) > 0.5
    assert torch.equal(to_torch_mha_mask(mask), ~mask)
    assert torch.equal(to_torch_mha_mask(mask.numpy()), ~mask)


# ----------------------------------------------------------------------------- entropy
@covers(attention_entropy)
@given(st.one_of(
    not_a_tensor(), tensor_of_dtype((3,), (torch.int64, torch.bool)),
    st.just(torch.tensor([0.5, float("nan")])), st.just(torch.tensor([2.0, -1.0])),
    st.just(torch.tensor([0.2, 0.2])), st.just(torch.tensor([float("inf"), 0.0])),
    st.just(torch.tensor(1.0))))
def test_attention_entropy_refuses_what_is_not_a_distribution(weights):
    assert_rejects(attention_entropy, "weights", weights)


@covers(attention_entropy)
@given(st.integers(1, 6), st.integers(0, 3), st.sampled_from([torch.float32, torch.float64]))
def test_attention_entropy_is_the_shannon_formula(m, rows, dtype):
    weights = torch.softmax(torch.randn(rows, m, dtype=dtype), dim=-1)
    bits = attention_entropy(weights)
    expected = [-sum(w * math.log2(w) for w in row if w > 0) for row in weights.tolist()]
    torch.testing.assert_close(bits, torch.tensor(expected, dtype=dtype), rtol=1e-5, atol=1e-6)
    assert (bits >= 0).all() and (bits <= math.log2(m) + 1e-5).all()
    assert attention_entropy(torch.zeros(2, m)).tolist() == [0.0, 0.0]  # fully masked rows


# ----------------------------------------------------------------------------- explorer
@covers(explore_attention, ExplorerState)
@given(st.sampled_from(["angle_deg", "length", "temperature", "keys", "values"]), st.data())
def test_explore_attention_refuses_bad_arguments(argument, data):
    kwargs = {"angle_deg": 0.0, "length": 1.0, "temperature": 1.0}
    bad = {"angle_deg": not_a_number(), "length": st.one_of(not_a_number(), st.floats(-9, -1)),
           "temperature": st.one_of(not_a_number(), st.floats(-9, 0)),
           "keys": st.one_of(not_a_tensor().filter(lambda v: v is not None),
                             st.just(torch.zeros(3, 3)), st.just(torch.zeros(0, 2)),
                             st.just(torch.tensor([[1.0, float("nan")]]))),
           "values": st.one_of(not_a_tensor().filter(lambda v: v is not None),
                               st.just(torch.zeros(2, 2)), st.just(torch.zeros(3)))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(explore_attention, argument, **kwargs)


def test_explore_attention_refuses_scores_that_overflow():
    assert_rejects(explore_attention, "temperature", 0.0, 1e30, 1e-30)


@covers(explore_attention, ExplorerState)
@given(st.floats(-720, 720), st.floats(0, 10), st.floats(0.05, 20), st.data())
def test_explore_attention_gives_a_distribution_for_any_slider_setting(angle, length,
                                                                        temperature, data):
    keys = data.draw(st.none() | float_tensors((3, 2), dtypes=(torch.float32,)))
    values = None if keys is None else torch.randn(3, 2)
    state = explore_attention(angle, length, temperature, keys, values)
    assert isinstance(state, ExplorerState)
    assert math.isclose(float(state.weights.sum()), 1.0, abs_tol=1e-5)
    assert 0.0 <= state.entropy_bits <= state.max_entropy_bits + 1e-6


# ----------------------------------------------------------------------------- maps
@covers(attention_map_over_image)
@given(st.sampled_from(["weights", "query_index", "head", "grid", "num_prefix_tokens"]),
       st.data())
def test_attention_map_refuses_bad_arguments(argument, data):
    kwargs = {"weights": torch.rand(2, 3, 5), "query_index": 0, "head": 1, "grid": (2, 2),
              "num_prefix_tokens": 1}
    bad = {"weights": st.one_of(not_a_tensor(), st.just(torch.rand(3, 5)),
                                tensor_of_dtype((2, 3, 5), (torch.int64, torch.bool))),
           "query_index": st.one_of(not_an_int(), st.integers(3, 10**9), st.integers(-9, -1)),
           "head": st.one_of(not_an_int(), st.integers(2, 10**9), st.integers(-9, -1)),
           "grid": st.one_of(st.none(), st.just((2,)), st.just((2, 2.0)), st.just((3, 3)),
                             st.just((0, 4)), st.just("22")),
           "num_prefix_tokens": st.one_of(not_an_int(), st.integers(-9, -1), st.just(2))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(attention_map_over_image, argument, **kwargs)


@covers(attention_map_over_image)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.sampled_from(["t", "np"]))
def test_attention_map_is_the_row_of_that_query_and_head(rows, cols, prefix, kind):
    weights = torch.rand(2, 3, prefix + rows * cols).transpose(0, 0)
    given_weights = weights.numpy() if kind == "np" else weights
    image = attention_map_over_image(given_weights, 2, 1, [rows, cols], prefix)
    assert image.shape == (rows, cols)
    assert image.flatten().tolist() == weights[1, 2, prefix:].tolist()


@given(st.lists(st.lists(st.sampled_from([0, 1, 2, 3]), max_size=3), min_size=1, max_size=3))
def test_the_shape_broadcast_matches_pytorch_s(shapes):
    from course_lib.attention import _broadcast_shapes
    try:
        expected = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            _broadcast_shapes(*shapes)
    else:
        assert _broadcast_shapes(*shapes) == expected


@covers(causal_mask)
@given(st.one_of(st.integers(), st.sampled_from(["gpu", "cuda:x", "", "cpu:-1"]), st.just([0])))
def test_causal_mask_refuses_a_bad_device(device):
    assert_rejects(causal_mask, "device", 3, device)
