"""Robustness of course_lib.contrastive: bad arguments are refused by name, fast; float64, numpy
and non-contiguous inputs work (the loss in their dtype, the dual encoder in its weights');
batch 1 works."""

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
    as_float32,
    assert_close_to_float32,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
    wrong_rank,
)

from course_lib.audio import AudioEncoder
from course_lib.contrastive import (
    ContrastiveBreakdown,
    DualEncoder,
    LogitScale,
    Recall,
    TemperatureCurve,
    clip_loss,
    contrastive_breakdown,
    contrastive_loss,
    cosine_similarity_matrix,
    recall_at_k,
    temperature_curve,
    zero_shot_classify,
)
from course_lib.vision import ViTEncoder


def bad_similarity() -> st.SearchStrategy:
    return st.one_of(not_a_tensor(), wrong_rank([2]), tensor_of_dtype((3, 3), NOT_FLOAT),
                     st.just(torch.zeros(3, 4)), st.just(torch.zeros(0, 0)),
                     st.just(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])))


def bad_temperature() -> st.SearchStrategy:
    return st.one_of(not_a_number(), st.floats(-1e9, 0.0), st.just(torch.ones(2)),
                     st.just(torch.tensor(-1.0)), st.just(torch.tensor(1, dtype=torch.int64)))


def _by_hand(similarity: torch.Tensor, tau: float) -> torch.Tensor:
    logits = similarity / tau
    labels = torch.arange(len(similarity))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@pytest.fixture(scope="module")
def dual():
    torch.manual_seed(0)
    return DualEncoder(ViTEncoder(8, 4, 1, dim=8, depth=1, num_heads=2),
                       AudioEncoder(6, dim=8, depth=1, num_heads=2), embed_dim=4).eval()


# ----------------------------------------------------------------------------- the loss
@covers(contrastive_loss, contrastive_breakdown)
@given(bad_similarity())
def test_losses_refuse_a_bad_similarity(similarity):
    assert_rejects(contrastive_loss, "similarity", similarity, 0.1)
    assert_rejects(contrastive_breakdown, "similarity", similarity, 0.1)


@covers(contrastive_loss, contrastive_breakdown, clip_loss)
@given(bad_temperature())
def test_losses_refuse_a_bad_temperature(temperature):
    assert_rejects(contrastive_loss, "temperature", torch.eye(3), temperature)
    assert_rejects(contrastive_breakdown, "temperature", torch.eye(3), temperature)
    assert_rejects(clip_loss, "temperature", torch.randn(3, 2), torch.randn(3, 2), temperature)


@covers(contrastive_loss)
@given(st.one_of(st.integers(), st.none(), st.text(max_size=2)))
def test_contrastive_loss_refuses_a_symmetric_flag_that_is_not_a_bool(symmetric):
    assert_rejects(contrastive_loss, "symmetric", torch.eye(3), 0.1, symmetric=symmetric)


@covers(contrastive_loss, contrastive_breakdown, ContrastiveBreakdown)
@given(st.integers(1, 6), st.floats(0.01, 10.0), st.data())
def test_losses_equal_cross_entropy_for_any_layout_and_dtype(n, tau, data):
    similarity = data.draw(float_tensors((n, n)))
    reference = as_float32(similarity).double()
    loss = contrastive_loss(similarity, tau)
    assert loss.dtype == torch.as_tensor(similarity).dtype  # no weights: computed in its dtype
    torch.testing.assert_close(loss.double(), _by_hand(reference, tau), rtol=1e-4, atol=1e-5)
    breakdown = contrastive_breakdown(similarity, tau)
    assert breakdown.row_losses.shape == (n,) == breakdown.column_losses.shape
    assert breakdown.symmetric_loss == pytest.approx(_by_hand(reference, tau).item(),
                                                     rel=1e-4, abs=1e-5)


# ----------------------------------------------------------------------------- features
@covers(cosine_similarity_matrix, clip_loss)
@given(st.sampled_from(["features_a", "features_b"]), st.one_of(
    not_a_tensor(), wrong_rank([2]), tensor_of_dtype((3, 2), NOT_FLOAT),
    st.just(torch.zeros(3, 2)), st.just(torch.tensor([[1.0, float("inf")]] * 3))))
def test_similarity_refuses_bad_features(argument, features):
    kwargs = {"features_a": torch.randn(3, 2), "features_b": torch.randn(3, 2), argument: features}
    assert_rejects(cosine_similarity_matrix, argument, **kwargs)
    assert_rejects(clip_loss, argument, temperature=0.1, **kwargs)


@covers(cosine_similarity_matrix, clip_loss)
def test_similarity_refuses_features_of_different_widths_or_counts():
    assert_rejects(cosine_similarity_matrix, "features_b", torch.randn(3, 2), torch.randn(3, 5))
    assert_rejects(clip_loss, "features_b", torch.randn(3, 2), torch.randn(4, 2), 0.1)


@covers(cosine_similarity_matrix, clip_loss)
@given(st.integers(1, 5), st.data())
def test_similarity_and_clip_loss_accept_any_layout(n, data):
    a, b = data.draw(float_tensors((n, 3))), data.draw(float_tensors((n, 3)))
    expected = F.cosine_similarity(as_float32(a)[:, None], as_float32(b)[None], dim=-1)
    got = cosine_similarity_matrix(a, b)
    torch.testing.assert_close(got.float(), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(clip_loss(a, b, 0.5).double(), _by_hand(expected.double(), 0.5),
                               rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- logit scale
@covers(LogitScale)
@given(st.sampled_from(["init_temperature", "max_scale"]), st.data())
def test_logit_scale_refuses_bad_settings(argument, data):
    kwargs = {"init_temperature": 0.07, "max_scale": 100.0}
    kwargs[argument] = data.draw(st.one_of(not_a_number(), st.floats(-1e9, 0.0)))
    assert_rejects(LogitScale, argument, **kwargs)


@covers(LogitScale, LogitScale.forward, LogitScale.clamp_, LogitScale.extra_repr)
@given(st.floats(0.011, 10.0), st.floats(101.0, 1e4))
def test_logit_scale_reads_and_clamps_as_documented(temperature, push):
    scale = LogitScale(temperature, max_scale=100.0)
    assert scale().item() == pytest.approx(1 / temperature, rel=1e-5)
    assert scale().item() == scale().item()  # reading twice changes nothing
    with torch.no_grad():
        scale.log_scale.fill_(math.log(push))  # an optimiser overshot the cap
    assert scale().item() == pytest.approx(push, rel=1e-4)  # forward does not clamp
    assert scale.clamp_() is scale and scale().item() == pytest.approx(100.0, rel=1e-5)
    assert "max_scale=100.0" in scale.extra_repr() and "max_scale" in repr(scale)


# ----------------------------------------------------------------------------- retrieval
@covers(recall_at_k, Recall)
@given(bad_similarity())
def test_recall_refuses_a_bad_similarity(similarity):
    assert_rejects(recall_at_k, "similarity", similarity, 1)


@covers(recall_at_k)
@given(st.one_of(bad_int(1, 4), st.just(np.float64(1.0))))
def test_recall_refuses_a_bad_k(k):
    assert_rejects(recall_at_k, "k", torch.eye(4), k)


@covers(recall_at_k)
@given(st.sampled_from(["labels_a", "labels_b"]), st.one_of(
    not_a_tensor().filter(lambda v: v is not None), st.just(torch.zeros(3, dtype=torch.long)),
    st.just(torch.zeros(4, 1, dtype=torch.long))))
def test_recall_refuses_bad_labels(argument, labels):
    kwargs = {"labels_a": torch.zeros(4, dtype=torch.long),
              "labels_b": torch.zeros(4, dtype=torch.long), argument: labels}
    assert_rejects(recall_at_k, argument, torch.eye(4), 1, **kwargs)


@covers(recall_at_k, Recall)
@given(st.integers(1, 6), st.data())
def test_recall_matches_a_hand_count_for_any_layout(n, data):
    similarity = data.draw(float_tensors((n, n)))
    k = data.draw(st.integers(1, n))
    dense = as_float32(similarity)
    hits = [i in dense[i].topk(k).indices.tolist() for i in range(n)]  # by hand, rows
    result = recall_at_k(similarity, np.int64(k))
    assert isinstance(result, Recall) and result.k == k
    assert result.a_to_b == pytest.approx(sum(hits) / n)


@covers(zero_shot_classify)
@given(st.sampled_from(["item_features", "prompt_features"]), st.one_of(
    not_a_tensor(), tensor_of_dtype((2, 3), NOT_FLOAT), st.just(torch.zeros(2, 3)),
    st.just(torch.ones(2, 2, 2, 3)), st.just(torch.ones(0, 3))))
def test_zero_shot_refuses_bad_features(argument, features):
    kwargs = {"item_features": torch.randn(4, 3), "prompt_features": torch.randn(2, 3),
              argument: features}
    assert_rejects(zero_shot_classify, argument, **kwargs)


@covers(zero_shot_classify)
@given(st.integers(1, 5), st.sampled_from([(3, 4), (3, 2, 4)]), st.data())
def test_zero_shot_picks_the_nearest_prototype_for_any_layout(n, prompt_shape, data):
    items = data.draw(float_tensors((n, 4)))
    prompts = data.draw(float_tensors(prompt_shape))
    dense = F.normalize(as_float32(prompts).double(), dim=-1)
    prototypes = dense.mean(dim=1) if dense.ndim == 3 else dense     # by hand
    scores = F.normalize(as_float32(items).double(), dim=-1) @ F.normalize(prototypes, dim=-1).T
    got = zero_shot_classify(items, prompts)
    assert got.shape == (n,) and got.dtype == torch.int64
    best = scores.max(dim=1).values
    assert torch.allclose(scores[torch.arange(n), got], best, atol=1e-4)  # a top score


# ----------------------------------------------------------------------------- temperature curve
@covers(temperature_curve, TemperatureCurve)
@given(st.one_of(not_a_tensor().filter(lambda v: not isinstance(v, list) or not v or
                                       not all(isinstance(t, float) and t > 0 for t in v)),
                 st.just(torch.tensor([0.1, -1.0])), st.just(torch.tensor([float("nan")])),
                 st.just(torch.ones(2, 2)), st.just(["a", "b"]), st.just(torch.ones(10**6))))
def test_temperature_curve_refuses_bad_temperatures(temperatures):
    assert_rejects(temperature_curve, "temperatures", torch.eye(12), temperatures)


@covers(temperature_curve)
@given(bad_similarity())
def test_temperature_curve_refuses_a_bad_similarity(similarity):
    assert_rejects(temperature_curve, "similarity", similarity, [0.1])


@covers(temperature_curve, TemperatureCurve)
@given(st.integers(1, 4), st.lists(st.floats(0.05, 5.0), min_size=1, max_size=4), st.data())
def test_temperature_curve_equals_the_loss_at_each_temperature(n, temperatures, data):
    similarity = data.draw(float_tensors((n, n)))
    curve = temperature_curve(similarity, temperatures)
    reference = as_float32(similarity).double()
    for tau, loss in zip(temperatures, curve.symmetric_loss.tolist(), strict=True):
        assert loss == pytest.approx(_by_hand(reference, tau).item(), rel=1e-4, abs=1e-5)


# ----------------------------------------------------------------------------- the dual encoder
@covers(DualEncoder)
@given(st.sampled_from(["image_encoder", "audio_encoder", "embed_dim", "image_dim",
                        "audio_dim", "init_temperature", "max_scale"]), st.data())
def test_dual_encoder_refuses_bad_settings(dual, argument, data):
    kwargs = {"image_encoder": dual.image_encoder, "audio_encoder": dual.audio_encoder,
              "embed_dim": 4}
    bad = {"image_encoder": st.one_of(st.none(), st.text(max_size=2), st.integers()),
           "audio_encoder": st.one_of(st.none(), st.just(torch.zeros(2))),
           "embed_dim": bad_int(1, 2**26), "image_dim": bad_int(1, 2**26),
           "audio_dim": bad_int(1, 2**26),
           "init_temperature": st.one_of(not_a_number(), st.floats(-9, 0)),
           "max_scale": st.one_of(not_a_number(), st.floats(-9, 0))}
    kwargs[argument] = data.draw(bad[argument].filter(
        lambda v: not (argument.endswith("_dim") and argument != "embed_dim" and v is None)))
    assert_rejects(DualEncoder, argument, **kwargs)


@covers(DualEncoder.forward, DualEncoder.loss)
@given(st.sampled_from(["images", "mels"]), st.one_of(
    not_a_tensor(), st.just(torch.zeros(0, 1, 8, 8)), st.just(torch.zeros(3, 1, 8, 8))))
def test_dual_encoder_refuses_unpaired_or_bad_batches(dual, argument, value):
    kwargs = {"images": torch.zeros(2, 1, 8, 8), "mels": torch.zeros(2, 6, 12), argument: value}
    if argument == "mels" and isinstance(value, torch.Tensor) and value.ndim == 4:
        value = kwargs["mels"] = torch.zeros(3, 6, 12)  # three clips for two images
    assert_rejects(dual, argument if not isinstance(value, torch.Tensor) or len(value) == 0
                   else "images and mels", **kwargs)
    assert_rejects(dual.loss, argument if not isinstance(value, torch.Tensor)
                   or len(value) == 0 else "images and mels", **kwargs)


@covers(DualEncoder.embed_images, DualEncoder.embed_audio)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(0, 6, 12)), st.just(torch.zeros(1, 5, 12)),
                 tensor_of_dtype((1, 6, 12), NOT_FLOAT)))
def test_dual_encoder_refuses_bad_mels(dual, mels):
    error = assert_rejects(dual.embed_audio, "mel", mels)
    assert "mel" in str(error)


@covers(DualEncoder.embed_images)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(0, 1, 8, 8)),
                 st.just(torch.zeros(1, 2, 8, 8)), tensor_of_dtype((1, 1, 8, 8), NOT_FLOAT)))
def test_dual_encoder_refuses_bad_images(dual, images):
    assert_rejects(dual.embed_images, "images", images)


@covers(DualEncoder.forward, DualEncoder.loss, DualEncoder.embed_images, DualEncoder.embed_audio)
@given(st.integers(1, 3), st.data())
def test_dual_encoder_accepts_the_dtype_policy_types(dual, batch, data):
    images = data.draw(float_tensors((3, 1, 8, 8)))[:batch]
    mels = data.draw(float_tensors((3, 6, 12)))[:batch]
    with torch.no_grad():
        got = dual(images, mels)
        expected = dual(as_float32(images), as_float32(mels))
        assert got.shape == (batch, batch)
        assert_close_to_float32(got, expected)
        assert_close_to_float32(dual.embed_images(images), dual.embed_images(as_float32(images)))
        loss = dual.loss(images, mels, symmetric=False)
        torch.testing.assert_close(loss, F.cross_entropy(expected, torch.arange(batch)),
                                   rtol=1e-4, atol=1e-4)
