"""Chapter 03's checkers: the right verdict for every kind of answer, and never an exception."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.attention import MultiHeadCrossAttention
from course_lib.checks.ch03 import check_masked_attention, check_split_heads, reference_split_heads


def _attention(q, k, v, mask, *, scale=True, dim=-1, invert=False, safe=True):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    allowed = ~mask if invert else mask
    scores = scores.masked_fill(~allowed, float("-inf"))
    if safe:
        scores = scores.masked_fill(~allowed.any(dim, keepdim=True), 0.0)
    weights = torch.softmax(scores, dim=dim)
    if safe:
        weights = weights.masked_fill(~allowed, 0.0)
    return weights @ v, weights


def correct(q, k, v, mask):
    return _attention(q, k, v, mask)


def stub(q, k, v, mask):
    raise NotImplementedError


def crashes(q, k, v, mask):
    return q @ v  # width mismatch


def wrong_shape(q, k, v, mask):
    output, weights = correct(q, k, v, mask)
    return output, weights[0]


def nan_on_empty_row(q, k, v, mask):
    return _attention(q, k, v, mask, safe=False)


def numpy_result(q, k, v, mask):
    output, weights = correct(q, k, v, mask)
    return output.numpy(), weights.numpy()


def no_scale(q, k, v, mask):
    return _attention(q, k, v, mask, scale=False)


def wrong_axis(q, k, v, mask):
    return _attention(q, k, v, mask, dim=-2)


def inverted_mask(q, k, v, mask):
    return _attention(q, k, v, mask, invert=True, safe=False)


def mask_ignored(q, k, v, mask):
    return _attention(q, k, v, torch.ones_like(mask))


def only_weights(q, k, v, mask):
    return correct(q, k, v, mask)[1]


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (correct, True, "Well done!"),
    (stub, False, "Not implemented yet"),
    (crashes, False, "raised RuntimeError"),
    (wrong_shape, False, "shape"),
    (nan_on_empty_row, False, "no allowed key"),
    (numpy_result, False, "weights is a numpy array (numpy.ndarray of shape (2, 3, 4)), but a "
                          "torch.Tensor is expected. torch.from_numpy(array) or "
                          "torch.as_tensor(array) converts an array"),
    (no_scale, False, "sqrt(d_k)"),
    (wrong_axis, False, "dim=-1"),
    (inverted_mask, False, "True means 'may attend'"),
    (mask_ignored, False, "blocked pairs"),
    (only_weights, False, "pair (output, weights)"),
    (42, False, "expects a function"),
])
def test_masked_attention_checker_verdicts(answer, passed, words, capsys):
    result = check_masked_attention(answer)
    assert result.passed is passed
    assert words in result.message
    assert result.message in capsys.readouterr().out


def split_correct(tokens, num_heads):
    b, t, d = tokens.shape
    return tokens.view(b, t, num_heads, d // num_heads).transpose(1, 2)


def split_stub(tokens, num_heads):
    raise NotImplementedError


def split_crash(tokens, num_heads):
    return tokens.view(num_heads, -1, 7)


def split_no_transpose(tokens, num_heads):
    b, t, d = tokens.shape
    return tokens.view(b, t, num_heads, d // num_heads)


def split_plain_reshape(tokens, num_heads):
    b, t, d = tokens.shape
    return tokens.reshape(b, num_heads, t, d // num_heads)


def split_strided(tokens, num_heads):
    b, t, d = tokens.shape
    return tokens.reshape(b, t, d // num_heads, num_heads).permute(0, 3, 1, 2)


def split_nan(tokens, num_heads):
    return split_correct(tokens, num_heads) * float("nan")


def split_numpy(tokens, num_heads):
    return split_correct(tokens, num_heads).numpy()


def split_only_first_case(tokens, num_heads):  # hard-coded for 3 heads
    b, t, d = tokens.shape
    return tokens.view(b, t, 3, d // 3).transpose(1, 2)


@pytest.mark.parametrize(("answer", "passed", "words"), [
    (split_correct, True, "Well done!"),
    (split_stub, False, "Not implemented yet"),
    (split_crash, False, "raised RuntimeError"),
    (split_no_transpose, False, "transpose(1, 2)"),
    (split_plain_reshape, False, "mixes tokens"),
    (split_strided, False, "contiguous slice"),
    (split_nan, False, "NaN"),
    (split_numpy, False, "numpy.ndarray"),
    (split_only_first_case, False, "num_heads=2"),
])
def test_split_heads_checker_verdicts(answer, passed, words):
    result = check_split_heads(answer)
    assert result.passed is passed
    assert words in result.message


def test_reference_split_equals_the_attention_module_split():
    module = MultiHeadCrossAttention(dim=12, num_heads=3)
    tokens = torch.randn(2, 5, 12)
    torch.testing.assert_close(reference_split_heads(tokens, 3), module._split_heads(tokens))
