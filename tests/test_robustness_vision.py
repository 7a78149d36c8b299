"""Robustness of course_lib.vision and course_lib.projection: bad arguments are refused by
name; float64, numpy and non-contiguous inputs give the float32 answer; batch 1 and empty
batches work."""

from __future__ import annotations

import numpy as np
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
    not_a_tensor,
    not_an_int,
    tensor_of_dtype,
    wrong_rank,
)

from course_lib.projection import Projection
from course_lib.vision import PatchEmbedding, ViTEncoder, patch_grid, patch_grid_lines, patchify


@pytest.fixture(scope="module")
def embed():
    torch.manual_seed(0)
    return PatchEmbedding(image_size=8, patch_size=4, in_channels=2, dim=6)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return ViTEncoder(8, 4, 2, dim=8, depth=1, num_heads=2, pool="none").eval()


@pytest.fixture(scope="module")
def projection():
    torch.manual_seed(0)
    return Projection(3, 5)


# ----------------------------------------------------------------------------- patchify
@covers(patchify)
@given(st.one_of(not_a_tensor(), wrong_rank([4]), st.just(np.array([["a"]]))))
def test_patchify_refuses_what_is_not_a_batch_of_images(images):
    assert_rejects(patchify, "images", images, 2)


@covers(patchify)
@given(st.one_of(bad_int(1), st.integers(3, 7)))  # 3..7 do not divide 8 (or exceed it)
def test_patchify_refuses_a_bad_patch_size(patch_size):
    error = assert_rejects(patchify, "patch_size", torch.zeros(1, 1, 8, 8), patch_size)
    assert "patch_size" in str(error)


@covers(patchify)
@given(st.integers(0, 2), st.sampled_from([1, 2, 4]), float_tensors((3, 2, 8, 8)))
def test_patchify_rearranges_any_layout_like_unfold(batch, patch_size, images):
    images = torch.as_tensor(images)[:batch]
    patches = patchify(images, patch_size)
    expected = torch.nn.functional.unfold(images.contiguous(), patch_size, stride=patch_size)
    torch.testing.assert_close(patches, expected.transpose(1, 2))


# ----------------------------------------------------------------------------- patch grid
@covers(patch_grid, patch_grid_lines)
@given(st.sampled_from(["image_size", "patch_size"]), st.data())
def test_patch_grid_refuses_bad_sizes(argument, data):
    sizes = {"image_size": 32, "patch_size": 4}
    sizes[argument] = data.draw(st.one_of(not_an_int(), st.integers(-10**9, 0),
                                          st.integers(33, 10**9) if argument == "patch_size"
                                          else st.nothing()))
    assert_rejects(patch_grid, argument, **sizes)
    assert_rejects(patch_grid_lines, argument, **sizes)


@covers(patch_grid_lines)
@given(st.integers(10_001, 10**12), st.integers(1, 1))
def test_patch_grid_lines_refuses_grids_no_figure_can_show(image_size, patch_size):
    assert_rejects(patch_grid_lines, "image_size", image_size, patch_size)


@covers(patch_grid, patch_grid_lines)
@given(st.integers(1, 300), st.data())
def test_patch_grid_and_its_lines_agree(image_size, data):
    patch_size = data.draw(st.integers(1, image_size))
    grid = patch_grid(image_size, patch_size)
    per_side = image_size // patch_size  # independent: floor division by hand
    assert grid["num_patches"] == per_side**2 and grid["tokens_with_cls"] == per_side**2 + 1
    assert grid["remainder"] == image_size % patch_size
    xs, ys = patch_grid_lines(image_size, patch_size)
    assert len(xs) == len(ys) == 6 * (per_side + 1)
    assert max(x for x in xs if x is not None) == per_side * patch_size


# ----------------------------------------------------------------------------- PatchEmbedding
@covers(PatchEmbedding)
@given(st.sampled_from(["image_size", "patch_size", "in_channels", "dim"]), st.data())
def test_patch_embedding_refuses_bad_sizes(argument, data):
    sizes = {"image_size": 8, "patch_size": 4, "in_channels": 1, "dim": 4}
    sizes[argument] = data.draw(bad_int(1, 16_384) if argument == "image_size"
                                else bad_int(1, 2**26))  # 2**26: too large for any memory
    assert_rejects(PatchEmbedding, argument, **sizes)


@covers(PatchEmbedding.forward)
@given(st.one_of(not_a_tensor(), wrong_rank([4]), tensor_of_dtype((1, 2, 8, 8), NOT_FLOAT),
                 st.just(torch.zeros(1, 3, 8, 8)), st.just(torch.zeros(1, 2, 8, 4))))
def test_patch_embedding_refuses_bad_images(embed, images):
    assert_rejects(embed, "images", images)


@covers(PatchEmbedding.forward)
@given(st.integers(0, 3), float_tensors((3, 2, 8, 8)))
def test_patch_embedding_accepts_the_dtype_policy_types(embed, batch, images):
    images = images[:batch]
    with torch.no_grad():
        got = embed(images)
        expected = embed(as_float32(images))
    assert got.shape == (batch, 4, 6)
    assert_close_to_float32(got, expected)


# ----------------------------------------------------------------------------- ViTEncoder
@covers(ViTEncoder)
@given(st.sampled_from(["dim", "depth", "num_heads", "mlp_ratio", "pool"]), st.data())
def test_vit_refuses_bad_arguments(argument, data):
    kwargs = {"image_size": 8, "patch_size": 4, "in_channels": 1, "dim": 8, "depth": 1,
              "num_heads": 2, "pool": "cls", "mlp_ratio": 2}
    bad = {"dim": bad_int(1, 2**13), "depth": bad_int(1, 1024), "num_heads": bad_int(1, 8),
           "mlp_ratio": bad_int(1, 2**20),
           "pool": st.one_of(st.text(max_size=4), st.none(), st.just("CLS"), st.just(True))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(ViTEncoder, argument, **kwargs)


def test_vit_refuses_more_patch_tokens_than_a_sequence_may_hold():
    assert_rejects(ViTEncoder, "patch_size", 256, 1, 1, 8, 1, 2)


@covers(ViTEncoder.forward)
@given(st.one_of(not_a_tensor(), wrong_rank([4]), tensor_of_dtype((1, 2, 8, 8), NOT_FLOAT),
                 st.just(torch.zeros(1, 1, 8, 8))))
def test_vit_refuses_bad_images(vit, images):
    assert_rejects(vit, "images", images)


@covers(ViTEncoder.forward)
@given(st.integers(0, 2), float_tensors((2, 2, 8, 8)))
def test_vit_accepts_the_dtype_policy_types(vit, batch, images):
    images = images[:batch]
    with torch.no_grad():
        got, expected = vit(images), vit(as_float32(images))
    assert got.shape == (batch, 5, 8)
    assert_close_to_float32(got, expected)


# ----------------------------------------------------------------------------- Projection
@covers(Projection)
@given(st.sampled_from(["in_dim", "out_dim", "bias"]), st.data())
def test_projection_refuses_bad_arguments(argument, data):
    kwargs = {"in_dim": 3, "out_dim": 2, "bias": True}
    kwargs[argument] = data.draw(st.one_of(st.none(), st.integers(), st.text(max_size=2))
                                 if argument == "bias" else bad_int(1, 2**26))
    assert_rejects(Projection, argument, **kwargs)


@covers(Projection.forward)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((2, 3), NOT_FLOAT), st.just(torch.zeros(2, 4)),
                 st.just(torch.tensor(1.0))))
def test_projection_refuses_bad_features(projection, features):
    assert_rejects(projection, "features", features)


@covers(Projection.forward)
@given(st.sampled_from([(3,), (1, 3), (0, 3), (2, 4, 3)]), st.data())
def test_projection_maps_any_leading_shape_and_dtype(projection, shape, data):
    features = data.draw(float_tensors(shape))
    with torch.no_grad():
        got = projection(features)
        # Independent: W x + b by hand.
        x = as_float32(features)
        expected = x @ projection.weight.T + projection.bias
    assert got.shape == (*shape[:-1], 5)
    assert_close_to_float32(got, expected)


@covers(Projection.set_parameters, Projection.from_parameters)
@given(st.sampled_from(["weight", "bias"]), st.one_of(
    st.none(), st.text(max_size=2), st.just([[1.0, float("nan")]]), st.just([[1, 2], [3]]),
    st.just(torch.zeros(3, 3)), st.just(torch.ones(2, dtype=torch.complex64)),
    st.just(np.array([[np.inf, 1.0]]))))
def test_projection_parameters_refuse_bad_values(argument, value):
    weight, bias = [[1.0, 2.0]], [0.5]
    kwargs = {"weight": weight, "bias": bias if argument == "bias" else None, argument: value}
    if argument == "bias" and value is None:
        return  # bias=None means "no bias": valid
    if argument == "weight" and value is None:
        value = kwargs["weight"] = "none"
    if not (isinstance(value, torch.Tensor) and value.shape == (3, 3)):  # a valid 3 x 3 W
        assert_rejects(Projection.from_parameters, argument, **kwargs)
    assert_rejects(Projection(2, 1).set_parameters, argument, **kwargs)


@covers(Projection.set_parameters, Projection.from_parameters)
@given(st.sampled_from(["list", "numpy64", "tensor64", "transposed"]))
def test_projection_parameters_accept_lists_arrays_and_tensors(kind):
    weight = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    given_weight = {"list": weight, "numpy64": np.array(weight),
                    "tensor64": torch.tensor(weight, dtype=torch.float64),
                    "transposed": torch.tensor(weight).T.contiguous().T}[kind]
    projection = Projection.from_parameters(given_weight, np.array([0.5, 0.0]))
    out = projection(torch.tensor([[1.0, 1.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[6.5, -0.5]]))  # by hand: W 1 + b
