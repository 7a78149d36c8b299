"""Inputs that once crashed deep inside torch, hung, allocated without bound, answered
silently, or were passed by a checker: each now gets a clear error (or works), here by name.

These tests use only the public API, so that each one can be run against older code.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.attention import (
    GatedCrossAttentionBlock,
    MultiHeadCrossAttention,
    MultiHeadSelfAttention,
    TransformerBlock,
    attention_entropy,
    attention_steps,
    causal_mask,
    explore_attention,
    padding_mask,
)
from course_lib.checks import check_comparison, check_evaluation, check_missing_modality
from course_lib.projection import Projection
from course_lib.signals import tone
from course_lib.text import BPETokenizer
from course_lib.vision import PatchEmbedding, ViTEncoder, patch_grid_lines, patchify


def _fast_error(call, *args, match: str, **kwargs):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        call(*args, **kwargs)
    assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------------------- sizes
def test_patch_grid_lines_with_a_billion_patches_fails_at_once():
    _fast_error(patch_grid_lines, 10**9, 1, match="image_size / patch_size")


def test_huge_sizes_that_would_allocate_fail_at_once():
    _fast_error(causal_mask, 10**6, match="n must be at most")
    _fast_error(padding_mask, [1], max_len=10**12, match="max_len")
    _fast_error(tone, 440.0, seconds=10**9, match="seconds")
    _fast_error(Projection, 10**6, 10**6, match="in_dim")
    _fast_error(MultiHeadCrossAttention, 2**20, 2, match="dim")


# ----------------------------------------------------------------------------- entropy
def test_attention_entropy_refuses_nan_instead_of_dropping_it():
    with pytest.raises(ValueError, match="weights contains NaN"):
        attention_entropy(torch.tensor([0.5, float("nan"), 0.5]))


def test_attention_entropy_refuses_weights_that_are_not_a_distribution():
    # [2, -1] sums to 1 but is no distribution: its "entropy" came out as -2 bits.
    with pytest.raises(ValueError, match="non-negative"):
        attention_entropy(torch.tensor([2.0, -1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        attention_entropy(torch.tensor([0.25, 0.25]))


# ----------------------------------------------------------------------------- float64
MODULE_INPUTS = [
    (lambda: Projection(3, 2), lambda x: (x((4, 3)),)),
    (lambda: PatchEmbedding(8, 4, 1, 6), lambda x: (x((2, 1, 8, 8)),)),
    (lambda: ViTEncoder(8, 4, 1, 8, 1, 2), lambda x: (x((2, 1, 8, 8)),)),
    (lambda: MultiHeadCrossAttention(8, 2, kv_dim=4), lambda x: (x((2, 3, 8)), x((2, 5, 4)))),
    (lambda: MultiHeadSelfAttention(8, 2), lambda x: (x((2, 3, 8)),)),
    (lambda: TransformerBlock(8, 2), lambda x: (x((2, 3, 8)),)),
    (lambda: GatedCrossAttentionBlock(8, 2, kv_dim=4), lambda x: (x((2, 3, 8)), x((2, 5, 4)))),
]


@pytest.mark.parametrize(("build", "inputs"), MODULE_INPUTS)
def test_float64_and_numpy_inputs_give_the_float32_answer(build, inputs):
    torch.manual_seed(0)
    module = build().eval()
    generator = torch.Generator().manual_seed(1)
    shapes = inputs(lambda shape: shape)
    float32 = [torch.randn(shape, generator=generator) for shape in shapes]
    with torch.no_grad():
        expected = module(*float32)
        # What torch.tensor(numpy_array) gives: float64 (it used to fail inside a matmul).
        from_float64 = module(*[x.double() for x in float32])
        from_numpy = module(*[x.double().numpy() for x in float32])
    assert from_float64.dtype == torch.float32
    torch.testing.assert_close(from_float64, expected)
    torch.testing.assert_close(from_numpy, expected)


def test_attention_of_mixed_float_dtypes_computes_in_the_wider_one():
    query = torch.randn(2, 3, dtype=torch.float64)
    key, value = torch.randn(4, 3), torch.randn(4, 2)
    steps = attention_steps(query, key, value)
    assert steps.output.dtype == torch.float64
    expected = torch.softmax(query @ key.double().T / 3**0.5, -1) @ value.double()
    torch.testing.assert_close(steps.output, expected)


# ----------------------------------------------------------------------------- token width
@pytest.mark.parametrize(("block", "argument", "inputs"), [
    (TransformerBlock(8, 2), "tokens", (torch.randn(2, 3, 7),)),
    (GatedCrossAttentionBlock(8, 2, kv_dim=4), "h", (torch.randn(2, 3, 7), torch.randn(2, 5, 4))),
    (GatedCrossAttentionBlock(8, 2, kv_dim=4), "media",
     (torch.randn(2, 3, 8), torch.randn(2, 5, 5))),
])
def test_a_wrong_token_width_is_named_before_the_layer_norm_sees_it(block, argument, inputs):
    # It used to reach LayerNorm first: "Given normalized_shape=[8], expected input with
    # shape [*, 8], but got input of size [2, 3, 7]" (a RuntimeError that names nothing).
    with pytest.raises(ValueError, match=f"^{argument} must have shape \\(B, tokens, "):
        block(*inputs)


# ----------------------------------------------------------------------------- siblings
def test_values_that_were_silently_accepted_are_refused():
    tokenizer = BPETokenizer().train(["ab ab"], 257)
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([97.9])  # was read as id 97
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([True])  # was read as id 1
    with pytest.raises(ValueError, match="length"):
        explore_attention(0.0, float("nan"), 1.0)  # gave NaN weights
    with pytest.raises(ValueError, match="amplitude"):
        tone(440.0, amplitude=float("nan"))
    with pytest.raises(ValueError, match="seconds"):
        tone(440.0, seconds=float("inf"))  # was an OverflowError
    with pytest.raises(ValueError, match="mlp_ratio"):
        TransformerBlock(8, 2, mlp_ratio=float("inf"))
    with pytest.raises(ValueError, match="dropout"):
        TransformerBlock(8, 2, dropout=float("nan"))


def test_numpy_scale_and_numpy_images_are_accepted():
    query = torch.randn(2, 3)
    output = attention_steps(query, query, query, scale=np.float32(0.5)).output
    expected = torch.softmax(query @ query.T * 0.5, -1) @ query
    torch.testing.assert_close(output, expected)
    images = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    assert patchify(images, 2)[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left 2 x 2


def test_huge_module_widths_fail_before_allocating():
    with pytest.raises(ValueError, match="dim"):
        TransformerBlock(2**16, 2)
    with pytest.raises(ValueError, match="patch"):
        ViTEncoder(4096, 2, 1, 8, 1, 2)  # 4 million patch tokens
    with pytest.raises(ValueError, match="depth"):
        ViTEncoder(8, 4, 1, 8, 10**9, 2)


# ----------------------------------------------------------------------------- checkers
def _correct(model, features, labels):
    """Exercise 4's answer: the accuracy, in evaluation mode, on the model's own modalities."""
    model.eval()
    own = {name: value for name, value in features.items() if name in model.input_dims}
    with torch.no_grad():
        return (model(own).argmax(dim=1) == labels).float().mean().item()


@pytest.mark.parametrize("answer", [float("nan"), float("inf"), -0.5, 1.5])
def test_check_evaluation_does_not_congratulate_nan_or_out_of_range(answer, capsys):
    result = check_evaluation(lambda model, features, labels: answer)
    assert result.passed is False and "Well done" not in capsys.readouterr().out


@pytest.mark.parametrize("answer", [float("nan"), float("inf")])
def test_check_missing_modality_does_not_congratulate_nan(answer):
    assert check_missing_modality(lambda model, features, labels, missing: answer).passed is False


@pytest.mark.parametrize("ours", [float("nan"), float("inf"), 2.5, 90.0])
def test_check_comparison_does_not_congratulate_impossible_accuracies(ours):
    assert check_comparison(ours, {"late fusion": 0.6}).passed is False


def test_check_comparison_says_a_percentage_is_one():
    result = check_comparison(90.0, {"late fusion": 0.6})
    assert "percentage" in result.message


def test_check_comparison_refuses_a_nan_baseline():
    assert check_comparison(0.9, {"late fusion": float("nan")}).passed is False


@pytest.mark.parametrize("as_type", [np.float32, np.float64, lambda v: np.array(v),
                                     lambda v: torch.tensor(v)])
def test_a_correct_accuracy_as_a_numpy_scalar_is_accepted(as_type):
    assert check_evaluation(lambda *args: as_type(_correct(*args))).passed


class _Noise(nn.Module):
    """Ignores its inputs and outputs random noise of the right shape."""

    def __init__(self, input_dims, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.unused = nn.Linear(1, 1)

    def forward(self, features):
        return torch.randn(len(next(iter(features.values()))), self.num_classes)


class _Scores(nn.Module):
    def __init__(self, input_dims, num_classes, dtype):
        super().__init__()
        self.linear = nn.Linear(sum(input_dims.values()), num_classes)
        self.dtype = dtype

    def forward(self, features):
        scores = self.linear(torch.cat([features[m] for m in sorted(features)], 1))
        return (scores * 10).to(self.dtype)


def test_check_model_does_not_pass_a_model_that_outputs_noise():
    from course_lib.checks import check_model
    result = check_model(_Noise)
    assert result.passed is False and "random" in result.message


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64])
def test_check_model_refuses_integer_or_complex_scores(dtype):
    from course_lib.checks import check_model
    result = check_model(lambda dims, classes: _Scores(dims, classes, dtype))
    assert result.passed is False and "dtype" in result.message
