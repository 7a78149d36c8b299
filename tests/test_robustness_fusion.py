"""Robustness of course_lib.fusion: float64 and numpy features give the float32 answer (they
crashed in a matmul), wrong features are refused by modality, batch 1 works."""

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
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
)

from course_lib.fusion import (
    DualEncoderMatcher,
    EarlyFusion,
    EmbeddingConcatFusion,
    HybridFusion,
    LateFusion,
    check_features,
    check_input_dims,
    concatenate_features,
    linear_combiner,
    modality_dropout,
    pool_tokens,
    zero_fill,
)

DIMS = {"image": 4, "audio": 3}


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"early": EarlyFusion(DIMS, 3, hidden_dim=8).eval(),
            "late": LateFusion(DIMS, 3, combine="learned", hidden_dim=8).eval(),
            "embedding": EmbeddingConcatFusion(DIMS, 3, embed_dim=4).eval(),
            "hybrid": HybridFusion(DIMS, 3, d_model=8, depth=1, num_heads=2).eval(),
            "dual": DualEncoderMatcher(DIMS, embed_dim=4).eval()}


MODELS = _models()
FORWARDS = (EarlyFusion.forward, LateFusion.forward, EmbeddingConcatFusion.forward,
            HybridFusion.forward, DualEncoderMatcher.forward)
CLASSES = (EarlyFusion, LateFusion, EmbeddingConcatFusion, HybridFusion, DualEncoderMatcher)


@st.composite
def feature_dicts(draw, batch: int | None = None, tokens: bool | None = None):
    batch = draw(st.integers(1, 3)) if batch is None else batch
    tokens = draw(st.booleans()) if tokens is None else tokens
    return {name: draw(float_tensors((batch, 2, width) if tokens else (batch, width)))
            for name, width in DIMS.items()}


# ----------------------------------------------------------------------------- the example
@covers(*CLASSES, *FORWARDS, LateFusion.per_modality_logits, HybridFusion.tokens,
        HybridFusion.attention_mass, DualEncoderMatcher.embeddings)
@given(st.sampled_from(sorted(MODELS)), feature_dicts())
def test_float64_numpy_and_strided_features_give_the_float32_answer(name, features):
    # Before: float64 features (torch.tensor(numpy_array)) failed with "mat1 and mat2 must
    # have the same dtype".
    model = MODELS[name]
    with torch.no_grad():
        got = model(features)
        expected = model({m: as_float32(v) for m, v in features.items()})
    assert_close_to_float32(got, expected)
    if name == "hybrid":
        mass = model.attention_mass(features)
        torch.testing.assert_close(sum(mass.values()), torch.ones(len(got)))
    if name == "dual":
        unit = model.embeddings(features)
        torch.testing.assert_close(unit["image"].norm(dim=-1), torch.ones(len(got)))


@covers(*FORWARDS, LateFusion.per_modality_logits, HybridFusion.tokens,
        DualEncoderMatcher.embeddings, check_features)
@given(st.sampled_from(sorted(MODELS)), st.sampled_from(["kind", "dtype", "rank", "width",
                                                         "batch", "unknown", "empty"]),
       st.data())
def test_models_refuse_wrong_features_by_modality(name, damage, data):
    features = {"image": torch.zeros(2, 4), "audio": torch.zeros(2, 3)}
    named = "features['audio']"
    if damage == "kind":
        features["audio"] = data.draw(not_a_tensor())
    elif damage == "dtype":
        features["audio"] = data.draw(tensor_of_dtype((2, 3), NOT_FLOAT))
    elif damage == "rank":
        features["audio"] = torch.zeros(2, 1, 1, 3)
    elif damage == "width":
        features["audio"] = torch.zeros(2, 5)
    elif damage == "batch":
        features["audio"], named = torch.zeros(3, 3), "batch size"
    elif damage == "unknown":
        features["video"], named = torch.zeros(2, 3), "video"
    else:
        features, named = {}, "features"
    assert_rejects(MODELS[name], named, features)


@covers(*CLASSES, check_input_dims)
@given(st.sampled_from(CLASSES), st.sampled_from(["input_dims", "num_classes"]), st.data())
def test_fusion_models_refuse_bad_construction_arguments(cls, argument, data):
    arguments = {"input_dims": DIMS, "num_classes": 3}
    arguments[argument] = data.draw(
        st.sampled_from([{}, {"image": 0}, {"image": True}, {"image": 2.0}, {3: 4}, [4, 3],
                         None]) if argument == "input_dims"
        else st.sampled_from([1, 0, -1, True, 2.5, "3", None]))
    if cls is DualEncoderMatcher and argument == "num_classes":
        return  # a matcher is built for two classes (match / no match)
    assert_rejects(cls, argument, **arguments)


@covers(LateFusion.combine_predictions, LateFusion.loss)
@given(st.sampled_from(["mean", "weighted", "learned"]), st.integers(1, 3))
def test_late_fusion_combines_checked_logits(combine, batch):
    torch.manual_seed(0)
    model = LateFusion(DIMS, 3, combine=combine, hidden_dim=8)
    logits = {"image": torch.randn(batch, 3), "audio": torch.randn(batch, 3)}
    combined = model.combine_predictions(logits)
    assert combined.shape == (batch, 3)
    if combine == "mean":  # the log of the mean of the two softmaxes, by hand
        expected = ((logits["image"].softmax(-1) + logits["audio"].softmax(-1)) / 2).log()
        torch.testing.assert_close(combined, expected)
    assert_rejects(model.combine_predictions, "logits", {"image": torch.randn(batch, 4)})
    assert_rejects(model.combine_predictions, "logits", torch.randn(batch, 3))
    features = {"image": torch.randn(batch, 4).double(), "audio": torch.randn(batch, 3)}
    assert torch.isfinite(model.loss(features, torch.zeros(batch, dtype=torch.long)))
    assert_rejects(model.loss, "labels", features, torch.zeros(batch))
    assert_rejects(model.loss, "labels", features, torch.zeros(batch + 1, dtype=torch.long))


# ----------------------------------------------------------------------------- helpers
@covers(concatenate_features, linear_combiner)
@given(st.integers(1, 3), float_tensors((2, 3)), float_tensors((2, 2)))
def test_concatenation_and_linear_combiner_by_hand(batch, first, second):
    first, second = torch.as_tensor(first)[:batch], torch.as_tensor(second)[:batch]
    joined = concatenate_features([first, second])
    torch.testing.assert_close(joined, torch.cat([first.contiguous(), second.contiguous()], 1))
    weights = torch.arange(5.0, dtype=joined.dtype)
    expected = (joined * weights).sum(dim=1) + 0.5
    torch.testing.assert_close(linear_combiner([first, second], weights, 0.5), expected)
    assert_rejects(concatenate_features, "features", first)  # one tensor, not a list of them
    assert_rejects(concatenate_features, "features", [first, "x"])
    assert_rejects(linear_combiner, "weights", [first, second], [1.0] * 5, 0.0)
    assert_rejects(linear_combiner, "bias", [first, second], weights, "0")


@covers(pool_tokens, zero_fill)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(2)), st.just(torch.zeros(1, 1, 1, 1)),
                 tensor_of_dtype((2, 3), NOT_FLOAT)))
def test_pool_and_zero_fill_refuse_what_is_not_features(tensor):
    assert_rejects(pool_tokens, "tensor", tensor)
    assert_rejects(zero_fill, "features", {"image": tensor}, DIMS)
    tokens = torch.arange(12.0).reshape(1, 3, 4)
    torch.testing.assert_close(pool_tokens(tokens), tokens.mean(dim=1))
    filled = zero_fill({"image": np.ones((2, 4))}, DIMS)
    assert torch.equal(filled["audio"], torch.zeros(2, 3, dtype=torch.float64))


@covers(modality_dropout)
@given(st.one_of(not_a_number(), st.floats(1, 9), st.floats(-9, -0.01)))
def test_modality_dropout_refuses_bad_probabilities_and_partitions_the_batch(p):
    features = {"image": torch.zeros(6, 4), "audio": torch.zeros(6, 3)}
    assert_rejects(modality_dropout, "p", features, p)
    assert_rejects(modality_dropout, "features", {"image": torch.zeros(6, 4),
                                                  "audio": torch.zeros(5, 3)}, 0.5)
    assert_rejects(modality_dropout, "generator", features, 0.5, generator=0)
    groups = modality_dropout(features, 0.5, torch.Generator().manual_seed(0))
    rows = sorted(int(r) for group_rows, _ in groups for r in group_rows)
    assert rows == list(range(6))
    assert all(kept for _, kept in groups)  # every example keeps at least one modality


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batch_of_one_and_token_sequences_work(name):
    features = {"image": torch.randn(1, 5, 4), "audio": torch.randn(1, 3)}
    with torch.no_grad():
        assert MODELS[name](features).shape[0] == 1
