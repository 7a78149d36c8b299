"""Fusion strategies: worked examples, shapes, modality subsets, errors, and real learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import TransformerBlock
from course_lib.fusion import (
    EarlyFusion,
    EmbeddingConcatFusion,
    HybridFusion,
    LateFusion,
    check_features,
    concatenate_features,
    linear_combiner,
    modality_dropout,
    pool_tokens,
    zero_fill,
)

DIMS = {"image": 6, "audio": 4}
B, C = 5, 3


def vectors(batch: int = B, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, width, generator=generator) for name, width in DIMS.items()}


def token_sequences(batch: int = B, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = {"image": 3, "audio": 7}
    return {name: torch.randn(batch, lengths[name], width, generator=generator)
            for name, width in DIMS.items()}


def all_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "early": EarlyFusion(DIMS, C, hidden_dim=16),
        "late-mean": LateFusion(DIMS, C, combine="mean", hidden_dim=16),
        "late-weighted": LateFusion(DIMS, C, combine="weighted", hidden_dim=16),
        "late-learned": LateFusion(DIMS, C, combine="learned", hidden_dim=16),
        "embedding-concat": EmbeddingConcatFusion(DIMS, C, embed_dim=8, hidden_dim=16),
        "hybrid": HybridFusion(DIMS, C, d_model=16, depth=2, num_heads=2),
    }


# ----------------------------------------------------------------------------- worked examples
def test_concatenation_worked_example_joins_features_end_to_end():
    joined = concatenate_features([torch.tensor([0.3, 0.7, 0.1]), torch.tensor([0.5, 0.2])])
    torch.testing.assert_close(joined, torch.tensor([0.3, 0.7, 0.1, 0.5, 0.2]))


def test_concatenation_of_batches_keeps_rows_together():
    first, second = torch.arange(6.0).reshape(2, 3), torch.arange(4.0).reshape(2, 2)
    joined = concatenate_features([first, second])
    assert joined.shape == (2, 5)
    assert joined[1].tolist() == [3.0, 4.0, 5.0, 2.0, 3.0]


def test_late_fusion_head_worked_example_is_0_83():
    # By hand: 0.5*0.8 + 0.2*(-0.3) + 0.3*0.1 + 0.4*0.9 + 0.1 = 0.4 - 0.06 + 0.03 + 0.36 + 0.1
    score = linear_combiner([torch.tensor([0.8, -0.3]), torch.tensor([0.1, 0.9])],
                            torch.tensor([0.5, 0.2, 0.3, 0.4]), 0.1)
    assert score.shape == ()
    assert score.item() == pytest.approx(0.83, abs=1e-6)


def test_linear_combiner_equals_torch_linear_on_batches():
    generator = torch.Generator().manual_seed(1)
    first, second = torch.randn(4, 2, generator=generator), torch.randn(4, 3, generator=generator)
    weights, bias = torch.randn(5, generator=generator), torch.tensor(0.25)
    expected = F.linear(torch.cat([first, second], dim=1), weights[None], bias[None])[:, 0]
    torch.testing.assert_close(linear_combiner([first, second], weights, bias), expected)


def test_worked_example_functions_reject_bad_inputs():
    with pytest.raises(ValueError, match="features is empty"):
        concatenate_features([])
    with pytest.raises(ValueError, match="one B"):
        concatenate_features([torch.zeros(2, 3), torch.zeros(3, 2)])
    with pytest.raises(ValueError, match="weights must be a vector of 4 entries"):
        linear_combiner([torch.zeros(2), torch.zeros(2)], torch.zeros(3), 0.0)


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", list(all_models()))
@pytest.mark.parametrize("make_inputs", [vectors, token_sequences], ids=["vectors", "tokens"])
def test_forward_gives_one_row_of_class_scores_per_example(name, make_inputs):
    model = all_models()[name]
    output = model(make_inputs())
    assert output.shape == (B, C)
    assert torch.isfinite(output).all()


def test_hybrid_fusion_builds_one_joint_token_sequence_with_a_fusion_token():
    model = all_models()["hybrid"]
    sequence, segments = model.tokens(token_sequences())
    assert sequence.shape == (B, 1 + 3 + 7, 16)
    assert segments == {"image": slice(1, 4), "audio": slice(4, 11)}
    sequence, segments = model.tokens(vectors())  # a vector becomes one token
    assert sequence.shape == (B, 3, 16)
    assert all(isinstance(block, TransformerBlock) for block in model.blocks)


@pytest.mark.parametrize("name", ["late-mean", "late-weighted", "late-learned", "hybrid"])
@pytest.mark.parametrize("subset", [("image",), ("audio",), ("image", "audio")])
def test_late_and_hybrid_fusion_work_with_any_subset_of_modalities(name, subset):
    model = all_models()[name]
    for make_inputs in (vectors, token_sequences):
        features = {key: value for key, value in make_inputs().items() if key in subset}
        output = model(features)
        assert output.shape == (B, C)
        assert torch.isfinite(output).all()


def test_dict_order_does_not_change_the_output():
    features = vectors()
    reordered = {"audio": features["audio"], "image": features["image"]}
    for name, model in all_models().items():
        torch.testing.assert_close(model(reordered), model(features), msg=name)
    assert check_features(reordered, DIMS) == ["image", "audio"]


# ----------------------------------------------------------------------------- errors
def test_early_fusion_refuses_a_missing_modality():
    with pytest.raises(ValueError, match=r"early fusion needs all of its modalities.*'audio'"):
        all_models()["early"]({"image": vectors()["image"]})
    with pytest.raises(ValueError, match="embedding concatenation needs every modality"):
        all_models()["embedding-concat"]({"audio": vectors()["audio"]})


@pytest.mark.parametrize("name", list(all_models()))
def test_a_feature_width_that_does_not_match_input_dims_names_the_modality(name):
    features = vectors()
    features["audio"] = torch.zeros(B, 5)
    with pytest.raises(ValueError, match=r"features\['audio'\] has width 5.*built for 4 "
                                         r"\(argument input_dims\['audio'\]\)"):
        all_models()[name](features)


def test_unknown_modality_bad_rank_and_mismatched_batches_are_refused():
    model = all_models()["hybrid"]
    with pytest.raises(ValueError, match="modality 'text'"):
        model({"text": torch.zeros(B, 6)})
    with pytest.raises(ValueError, match=r"features\['image'\] must be \(B, D\) or \(B, T, D\)"):
        model({"image": torch.zeros(6)})
    with pytest.raises(ValueError, match="disagree on the batch size"):
        model({"image": torch.zeros(2, 6), "audio": torch.zeros(3, 4)})
    with pytest.raises(ValueError, match="non-empty dict"):
        model({})


def test_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="combine must be one of"):
        LateFusion(DIMS, C, combine="max")
    with pytest.raises(ValueError, match="d_model 30 is not divisible by num_heads 4"):
        HybridFusion(DIMS, C, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        HybridFusion(DIMS, C, depth=0)
    with pytest.raises(ValueError, match=r"input_dims\['audio'\] must be a positive int"):
        EarlyFusion({"image": 6, "audio": 0}, C)
    with pytest.raises(ValueError, match="input_dims must be a non-empty dict"):
        EarlyFusion({}, C)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        EarlyFusion(DIMS, 1)


# ----------------------------------------------------------------------------- semantics
def test_late_fusion_mean_averages_the_probabilities_of_the_modalities_present():
    model = all_models()["late-mean"]
    features = vectors()
    per_modality = model.per_modality_logits(features)
    expected = (per_modality["image"].softmax(-1) + per_modality["audio"].softmax(-1)) / 2
    torch.testing.assert_close(model(features).exp(), expected)
    alone = model({"audio": features["audio"]})
    torch.testing.assert_close(alone, per_modality["audio"].log_softmax(-1))


def test_late_fusion_weighted_with_equal_weights_equals_the_mean():
    models = all_models()
    weighted, mean = models["late-weighted"], models["late-mean"]
    weighted.models.load_state_dict(mean.models.state_dict())
    torch.testing.assert_close(weighted(vectors()), mean(vectors()))


def test_learned_combiner_is_a_linear_layer_over_the_probabilities_with_uniform_for_missing():
    model = all_models()["late-learned"]
    features = vectors()
    image_probabilities = model.per_modality_logits(features)["image"].softmax(-1)
    uniform = torch.full((B, C), 1 / C)
    expected = F.linear(torch.cat([image_probabilities, uniform], dim=1),
                        model.combiner.weight, model.combiner.bias)
    torch.testing.assert_close(model({"image": features["image"]}), expected)


def test_late_fusion_loss_trains_each_modality_model_on_its_own_prediction_only():
    model = all_models()["late-learned"]
    features, labels = vectors(), torch.tensor([0, 1, 2, 0, 1])
    model.loss(features, labels).backward()
    fused_gradient = model.models["image"][0].weight.grad.clone()
    model.zero_grad()
    own = F.cross_entropy(model.per_modality_logits(features)["image"], labels) / 2
    own.backward()
    torch.testing.assert_close(fused_gradient, model.models["image"][0].weight.grad)
    assert model.combiner.weight.grad is None  # the second pass did not touch the combiner


def test_hybrid_attention_mass_is_the_fusion_tokens_attention_summed_per_modality():
    model = all_models()["hybrid"]
    features = token_sequences()
    mass = model.attention_mass(features)
    # Independent recomputation of the last block's attention from the fusion token.
    hidden, _ = model.tokens(features)
    for block in model.blocks[:-1]:
        hidden = block(hidden)
    last = model.blocks[-1].attention
    normed = model.blocks[-1].attention_norm(hidden)
    heads, width = last.num_heads, last.head_dim
    queries = last.q_proj(normed).view(B, -1, heads, width).transpose(1, 2)
    keys = last.k_proj(normed).view(B, -1, heads, width).transpose(1, 2)
    weights = (queries @ keys.transpose(-2, -1) / width**0.5).softmax(-1).mean(dim=1)[:, 0]
    torch.testing.assert_close(mass["image"], weights[:, 1:4].sum(-1).detach())
    torch.testing.assert_close(mass["audio"], weights[:, 4:].sum(-1).detach())
    total = mass["image"] + mass["audio"] + mass["fusion"]
    torch.testing.assert_close(total, torch.ones(B))


# ----------------------------------------------------------------------------- learning
def loss_of(model, features, labels):
    if isinstance(model, LateFusion):
        return model.loss(features, labels)
    return F.cross_entropy(model(features), labels)


@pytest.mark.parametrize("name", list(all_models()))
def test_every_model_can_overfit_a_tiny_batch(name):
    model = all_models()[name]
    features = token_sequences(batch=8, seed=3) if name == "hybrid" else vectors(batch=8, seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = loss_of(model, features, labels).item()
    for _ in range(300):
        loss = loss_of(model, features, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = F.cross_entropy(model(features), labels).item()
    assert first > 0.8
    assert final < 0.05, f"{name} only reached loss {final:.3f}"


@pytest.mark.parametrize("name", ["early", "embedding-concat", "hybrid"])
def test_gradients_reach_every_parameter(name):
    model = all_models()[name]
    F.cross_entropy(model(token_sequences()), torch.tensor([0, 1, 2, 0, 1])).backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name


def xor_data(count: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each modality a noisy bit; the label is whether the two bits agree (an interaction)."""
    generator = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (count, 2), generator=generator)
    noise = 0.1 * torch.randn(count, 2, generator=generator)
    values = 2.0 * bits - 1 + noise
    return {"a": values[:, :1], "b": values[:, 1:]}, (bits[:, 0] == bits[:, 1]).long()


def test_only_decision_level_fusion_fails_when_the_label_is_an_interaction():
    train_features, train_labels = xor_data(512, seed=0)
    test_features, test_labels = xor_data(512, seed=1)
    dims = {"a": 1, "b": 1}
    torch.manual_seed(0)
    models = {"early": EarlyFusion(dims, 2, hidden_dim=16),
              "late": LateFusion(dims, 2, combine="learned", hidden_dim=16),
              "hybrid": HybridFusion(dims, 2, d_model=32, depth=1, num_heads=4)}
    accuracy = {}
    for name, model in models.items():
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(300):
            loss = loss_of(model, train_features, train_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            predictions = model(test_features).argmax(-1)
        accuracy[name] = (predictions == test_labels).float().mean().item()
    assert accuracy["early"] > 0.95 and accuracy["hybrid"] > 0.95, accuracy
    assert abs(accuracy["late"] - 0.5) < 0.1, accuracy


# ----------------------------------------------------------------------------- missing modalities
def test_modality_dropout_drops_each_modality_of_each_example_with_probability_p():
    generator = torch.Generator().manual_seed(0)
    features, p, draws = vectors(batch=200), 0.4, 40
    absent = {"image": 0, "audio": 0}
    for _ in range(draws):
        groups = modality_dropout(features, p, generator)
        rows = torch.cat([group_rows for group_rows, _ in groups])
        assert torch.equal(rows.sort().values, torch.arange(200))  # a partition of the batch
        for group_rows, kept in groups:
            assert 1 <= len(kept) <= 2
            for name in features:
                if name in kept:
                    assert torch.equal(kept[name], features[name][group_rows])
                else:
                    absent[name] += len(group_rows)
    # P(absent) = p(1 - p) + p^2 / 2: dropped alone, or both dropped and the other restored.
    expected_absent = p * (1 - p) + p * p / 2
    for name, count in absent.items():
        assert count / (200 * draws) == pytest.approx(expected_absent, abs=0.02), name
    groups = modality_dropout(features, 0.0, generator)
    assert len(groups) == 1 and groups[0][1].keys() == features.keys()


def test_modality_dropout_rejects_bad_probabilities():
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
            modality_dropout(vectors(), p)
    with pytest.raises(ValueError, match="features is empty"):
        modality_dropout({}, 0.5)


def test_pooling_averages_tokens_and_refuses_other_shapes():
    tokens = torch.arange(24.0).reshape(2, 3, 4)
    torch.testing.assert_close(pool_tokens(tokens), tokens.sum(1) / 3)
    assert torch.equal(pool_tokens(tokens[:, 0]), tokens[:, 0])  # vectors pass through
    with pytest.raises(ValueError, match=r"tensor must be \(B, D\) or \(B, T, D\)"):
        pool_tokens(torch.zeros(4))


def test_zero_fill_gives_missing_modalities_zero_vectors_so_early_fusion_runs():
    features = {"image": vectors()["image"]}
    filled = zero_fill(features, DIMS)
    assert filled["image"] is features["image"]
    assert torch.equal(filled["audio"], torch.zeros(B, 4))
    assert all_models()["early"](filled).shape == (B, C)
