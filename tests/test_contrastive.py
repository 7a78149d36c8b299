"""Tests of course_lib.contrastive: InfoNCE, CLIP's loss and logit scale, retrieval, zero-shot."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.contrastive import (
    WORKED_SIMILARITY,
    WORKED_TEMPERATURE,
    LogitScale,
    clip_loss,
    contrastive_breakdown,
    contrastive_loss,
    cosine_similarity_matrix,
    recall_at_k,
    temperature_curve,
    zero_shot_classify,
)


def cross_entropy_formulation(similarity, temperature, symmetric=True):
    logits = similarity / temperature
    labels = torch.arange(similarity.shape[0])
    rows = F.cross_entropy(logits, labels)
    if not symmetric:
        return rows
    return (rows + F.cross_entropy(logits.T, labels)) / 2


def hand_loss(values, index, temperature):
    """-log softmax(values / tau)[index] with math.exp only."""
    exps = [math.exp(v / temperature) for v in values]
    return -math.log(exps[index] / sum(exps))


# ---------------------------------------------------------------- contrastive_loss


@pytest.mark.parametrize("n", [1, 2, 5, 17])
@pytest.mark.parametrize("temperature", [0.01, 0.07, 1.0, 3.0])
def test_contrastive_loss_equals_cross_entropy_of_both_directions(n, temperature):
    generator = torch.Generator().manual_seed(n)
    similarity = torch.rand(n, n, generator=generator, dtype=torch.float64) * 2 - 1
    expected = cross_entropy_formulation(similarity, temperature)
    torch.testing.assert_close(
        contrastive_loss(similarity, temperature), expected, atol=1e-6, rtol=0
    )


def test_rows_only_loss_equals_cross_entropy_of_rows():
    similarity = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    expected = cross_entropy_formulation(similarity, 0.2, symmetric=False)
    torch.testing.assert_close(
        contrastive_loss(similarity, 0.2, symmetric=False), expected, atol=1e-6, rtol=0
    )


def test_directions_differ_on_a_non_symmetric_matrix_and_agree_on_a_symmetric_one():
    similarity = torch.tensor(WORKED_SIMILARITY, dtype=torch.float64)
    rows = contrastive_loss(similarity, 0.1, symmetric=False)
    columns = contrastive_loss(similarity.T, 0.1, symmetric=False)
    assert abs(rows.item() - columns.item()) > 1e-7
    symmetric_matrix = (similarity + similarity.T) / 2
    torch.testing.assert_close(
        contrastive_loss(symmetric_matrix, 0.1, symmetric=False),
        contrastive_loss(symmetric_matrix.T, 0.1, symmetric=False),
    )


def test_contrastive_loss_accepts_a_tensor_temperature_and_passes_gradients_to_it():
    similarity = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    scale = torch.tensor(14.0, requires_grad=True)
    loss = contrastive_loss(similarity, 1 / scale)
    loss.backward()
    assert scale.grad is not None and scale.grad.abs() > 0
    torch.testing.assert_close(loss.detach(), cross_entropy_formulation(similarity, 1 / 14.0))


def test_loss_of_perfectly_separated_pairs_tends_to_zero_and_of_identical_pairs_is_log_n():
    assert contrastive_loss(torch.eye(4), 0.01).item() < 1e-10
    torch.testing.assert_close(contrastive_loss(torch.ones(4, 4), 0.1), torch.tensor(math.log(4)))


@pytest.mark.parametrize("shape", [(3, 4), (3,), (2, 2, 2), (0, 0)])
def test_contrastive_loss_rejects_a_non_square_similarity(shape):
    with pytest.raises(ValueError, match="similarity"):
        contrastive_loss(torch.zeros(shape), 0.1)


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), torch.tensor(-1.0)])
def test_contrastive_loss_rejects_a_temperature_that_is_not_positive(temperature):
    with pytest.raises(ValueError, match="temperature"):
        contrastive_loss(torch.eye(3), temperature)


def test_contrastive_loss_rejects_a_non_scalar_temperature():
    with pytest.raises(ValueError, match="temperature"):
        contrastive_loss(torch.eye(3), torch.ones(3))


# ---------------------------------------------------------------- the worked example


def test_worked_example_matches_golden_numbers_computed_with_math_exp():
    similarity = torch.tensor(WORKED_SIMILARITY, dtype=torch.float64)
    tau = WORKED_TEMPERATURE
    rows = [hand_loss(WORKED_SIMILARITY[i], i, tau) for i in range(3)]
    columns = [hand_loss([WORKED_SIMILARITY[j][i] for j in range(3)], i, tau) for i in range(3)]
    breakdown = contrastive_breakdown(similarity, tau)
    assert breakdown.row_losses.tolist() == pytest.approx(rows, abs=1e-12)
    assert breakdown.column_losses.tolist() == pytest.approx(columns, abs=1e-12)
    assert breakdown.row_loss == pytest.approx(sum(rows) / 3, abs=1e-12)
    assert breakdown.column_loss == pytest.approx(sum(columns) / 3, abs=1e-12)
    assert breakdown.symmetric_loss == pytest.approx((sum(rows) + sum(columns)) / 6, abs=1e-12)
    assert contrastive_loss(similarity, tau).item() == pytest.approx(breakdown.symmetric_loss)
    # Row 1 by hand: exp(9) / (exp(9) + exp(2) + exp(1)).
    p = math.exp(9) / (math.exp(9) + math.exp(2) + math.exp(1))
    assert breakdown.row_probabilities[0, 0].item() == pytest.approx(p, abs=1e-12)


def test_worked_example_reproduces_the_syllabus_rounded_figures():
    breakdown = contrastive_breakdown(torch.tensor(WORKED_SIMILARITY), WORKED_TEMPERATURE)
    assert round(breakdown.row_probabilities[0, 0].item(), 5) == 0.99875
    assert [round(v, 6) for v in breakdown.row_losses.tolist()] == [0.001247, 0.009174, 0.004945]
    assert [round(v, 6) for v in breakdown.column_losses.tolist()] == [
        0.002810, 0.003385, 0.009174]
    assert round(breakdown.row_loss, 7) == 0.0051221
    assert round(breakdown.column_loss, 7) == 0.0051232
    assert round(breakdown.symmetric_loss, 7) == 0.0051227


def test_breakdown_probabilities_sum_to_one_along_their_softmax_axis():
    breakdown = contrastive_breakdown(torch.randn(5, 5), 0.3)
    torch.testing.assert_close(breakdown.row_probabilities.sum(dim=1), torch.ones(5).double())
    torch.testing.assert_close(breakdown.column_probabilities.sum(dim=0), torch.ones(5).double())


def test_temperature_curve_agrees_with_contrastive_loss_at_each_temperature():
    similarity = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))
    temperatures = torch.tensor([0.02, 0.1, 0.5, 2.0])
    curve = temperature_curve(similarity, temperatures)
    losses = zip(temperatures, curve.row_loss, curve.symmetric_loss, strict=True)
    for tau, rows, symmetric in losses:
        expected_rows = cross_entropy_formulation(similarity.double(), tau.item(), symmetric=False)
        torch.testing.assert_close(rows, expected_rows)
        expected = cross_entropy_formulation(similarity.double(), tau.item())
        torch.testing.assert_close(symmetric, expected)


def test_temperature_curve_rejects_non_positive_temperatures():
    with pytest.raises(ValueError, match="temperatures"):
        temperature_curve(torch.eye(3), torch.tensor([0.1, 0.0]))


def test_breakdown_rejects_bad_inputs():
    with pytest.raises(ValueError, match="similarity"):
        contrastive_breakdown(torch.zeros(2, 3), 0.1)
    with pytest.raises(ValueError, match="temperature"):
        contrastive_breakdown(torch.eye(2), 0.0)


# ---------------------------------------------------------------- clip_loss


def test_clip_loss_equals_cross_entropy_on_normalised_features():
    generator = torch.Generator().manual_seed(4)
    a, b = torch.randn(8, 16, generator=generator), torch.randn(8, 16, generator=generator)
    a_unit = a / a.norm(dim=1, keepdim=True)
    b_unit = b / b.norm(dim=1, keepdim=True)
    expected = cross_entropy_formulation(a_unit @ b_unit.T, 0.07)
    torch.testing.assert_close(clip_loss(a, b, 0.07), expected, atol=1e-6, rtol=0)


def test_clip_loss_ignores_the_length_of_feature_vectors():
    generator = torch.Generator().manual_seed(5)
    a, b = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    lengths = torch.tensor([[0.1], [2.0], [7.0], [1.0], [0.5]])
    torch.testing.assert_close(clip_loss(a * lengths, b, 0.1), clip_loss(a, b, 0.1))


def test_clip_loss_takes_the_temperature_from_a_logit_scale_and_trains_it():
    logit_scale = LogitScale()
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    clip_loss(a, b, 1 / logit_scale()).backward()
    assert logit_scale.log_scale.grad is not None


def test_clip_loss_rejects_feature_batches_of_different_size():
    with pytest.raises(ValueError, match="features_a and features_b"):
        clip_loss(torch.randn(4, 8), torch.randn(5, 8), 0.1)


def test_clip_loss_rejects_features_of_different_width():
    with pytest.raises(ValueError, match="features_b has width 7"):
        clip_loss(torch.randn(4, 8), torch.randn(4, 7), 0.1)


@pytest.mark.parametrize("which", ["features_a", "features_b"])
def test_clip_loss_rejects_zero_norm_feature_vectors(which):
    features = {"features_a": torch.randn(3, 4), "features_b": torch.randn(3, 4)}
    features[which][1] = 0.0
    with pytest.raises(ValueError, match=f"{which} has zero-norm.*row\\(s\\) \\[1\\]"):
        clip_loss(features["features_a"], features["features_b"], 0.1)


def test_clip_loss_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        clip_loss(torch.randn(3, 4), torch.randn(3, 4), -0.5)


def test_cosine_similarity_matrix_matches_torch_cosine_similarity():
    a, b = torch.randn(4, 6), torch.randn(3, 6)
    expected = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
    torch.testing.assert_close(cosine_similarity_matrix(a, b), expected)


def test_cosine_similarity_matrix_rejects_non_matrix_features():
    with pytest.raises(ValueError, match="features_a must be a \\(N, D\\) tensor"):
        cosine_similarity_matrix(torch.randn(4), torch.randn(4, 2))


# ---------------------------------------------------------------- LogitScale


def test_logit_scale_starts_at_one_over_0_07():
    logit_scale = LogitScale()
    assert logit_scale.log_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)
    assert logit_scale().item() == pytest.approx(14.2857, abs=1e-4)


def test_logit_scale_never_exceeds_max_scale_after_steps_that_push_it_up():
    logit_scale = LogitScale(max_scale=100.0)
    optimizer = torch.optim.SGD(logit_scale.parameters(), lr=1.0)
    seen = []
    for _ in range(50):
        scale = logit_scale()
        seen.append(scale.item())
        optimizer.zero_grad()
        (-scale).backward()  # gradient ascent on the scale
        optimizer.step()
        logit_scale.clamp_()  # after the step, as OpenCLIP's training loop does
    seen.append(logit_scale().item())
    assert seen[0] < seen[5]  # it really was pushed up
    assert max(seen) <= 100.0 + 1e-4
    assert seen[-1] == pytest.approx(100.0, rel=1e-6)


def test_logit_scale_can_come_back_down_in_one_step_after_sitting_at_its_bound():
    logit_scale = LogitScale(max_scale=100.0)
    optimizer = torch.optim.SGD(logit_scale.parameters(), lr=1.0)
    for _ in range(20):  # push far past the bound
        optimizer.zero_grad()
        (-logit_scale()).backward()
        optimizer.step()
        logit_scale.clamp_()
    optimizer = torch.optim.SGD(logit_scale.parameters(), lr=0.01)
    optimizer.zero_grad()
    scale = logit_scale()
    scale.backward()  # now push it down: the gradient must not be zero at the bound
    assert logit_scale.log_scale.grad.item() == pytest.approx(100.0, rel=1e-5)
    optimizer.step()
    assert logit_scale().item() < 99.0


def test_logit_scale_with_adam_inside_clip_training_stays_within_bounds():
    torch.manual_seed(0)
    a = torch.randn(16, 4)
    b = a + 0.01 * torch.randn(16, 4)  # separable pairs: the loss wants a huge scale
    logit_scale = LogitScale(max_scale=50.0)
    optimizer = torch.optim.Adam(logit_scale.parameters(), lr=0.5)
    for _ in range(40):
        optimizer.zero_grad()
        clip_loss(a, b, 1 / logit_scale()).backward()
        optimizer.step()
        logit_scale.clamp_()
        assert logit_scale().item() <= 50.0 + 1e-4
    assert logit_scale().item() == pytest.approx(50.0, rel=1e-5)


def test_logit_scale_forward_never_changes_its_parameter():
    logit_scale = LogitScale(max_scale=100.0)
    with torch.no_grad():
        logit_scale.log_scale.fill_(math.log(400.0))  # as if an optimiser step overshot
    assert logit_scale().item() == pytest.approx(400.0, rel=1e-6)  # forward only reads
    assert logit_scale.log_scale.item() == pytest.approx(math.log(400.0), rel=1e-6)
    assert logit_scale.clamp_() is logit_scale
    assert logit_scale.log_scale.item() == pytest.approx(math.log(100.0), rel=1e-6)
    assert logit_scale().item() == pytest.approx(100.0, rel=1e-6)
    with torch.no_grad():
        logit_scale.log_scale.fill_(math.log(3.0))  # below the bound: clamp_ leaves it alone
    assert logit_scale.clamp_().log_scale.item() == pytest.approx(math.log(3.0), rel=1e-6)


def test_logit_scale_clamped_from_trains_on_step_hook_stays_within_bounds():
    from course_lib.train import train

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.logit_scale = LogitScale(max_scale=20.0)

    torch.manual_seed(0)
    a = torch.randn(32, 4)
    b = a + 0.01 * torch.randn(32, 4)  # separable pairs: the loss wants a huge scale
    model = Scaled()
    seen = []

    def after_step(history):
        model.logit_scale.clamp_()
        seen.append(model.logit_scale().item())

    train(model, lambda batch: clip_loss(batch[0], batch[1], 1 / model.logit_scale()),
          [a, b], epochs=30, batch_size=32, lr=0.5, on_step=after_step)
    assert max(seen) <= 20.0 + 1e-4
    assert seen[-1] == pytest.approx(20.0, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"init_temperature": 0.0}, "init_temperature"),
     ({"init_temperature": -1.0}, "init_temperature"),
     ({"max_scale": 0.0}, "max_scale"), ({"init_temperature": 0.001}, "max_scale")],
)
def test_logit_scale_rejects_bad_settings(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        LogitScale(**kwargs)


# ---------------------------------------------------------------- retrieval and zero-shot


HAND_MADE = torch.tensor([
    [0.9, 0.1, 0.0, 0.2],  # item 0: own pair ranked 1st among its row
    [0.8, 0.3, 0.1, 0.0],  # item 1: own pair 2nd (0.8 beats it)
    [0.7, 0.6, 0.2, 0.5],  # item 2: own pair last (4th)
    [0.0, 0.1, 0.3, 0.4],  # item 3: own pair 1st
])


def test_recall_at_k_on_a_hand_made_matrix():
    # Rows (A->B): ranks of own pair 1, 2, 4, 1. Columns (B->A): column 0 -> 1st;
    # column 1 [0.1, 0.3, 0.6, 0.1] -> 0.3 is 2nd; column 2 [0.0, 0.1, 0.2, 0.3] -> 2nd;
    # column 3 [0.2, 0.0, 0.5, 0.4] -> 0.4 is 2nd.
    assert recall_at_k(HAND_MADE, 1).a_to_b == pytest.approx(2 / 4)
    assert recall_at_k(HAND_MADE, 2).a_to_b == pytest.approx(3 / 4)
    assert recall_at_k(HAND_MADE, 4).a_to_b == pytest.approx(1.0)
    assert recall_at_k(HAND_MADE, 1).b_to_a == pytest.approx(1 / 4)
    assert recall_at_k(HAND_MADE, 2).b_to_a == pytest.approx(4 / 4)


def test_recall_at_k_with_labels_counts_any_item_of_the_same_class():
    labels = torch.tensor([0, 0, 1, 1])
    # Row 1's best column is 0, which shares its class: a hit at k=1 with labels.
    # Row 2's best column is 0 (class 0): a miss; row 3's best is column 3: a hit.
    recall = recall_at_k(HAND_MADE, 1, labels_a=labels, labels_b=labels)
    assert recall.a_to_b == pytest.approx(3 / 4)
    # Columns: col 0 best row 0 (hit), col 1 best row 2 (class 1 vs 0: miss),
    # col 2 best row 3 (hit), col 3 best row 2 (hit).
    assert recall.b_to_a == pytest.approx(3 / 4)


def test_recall_is_perfect_on_the_identity_and_symmetric_under_transpose():
    assert recall_at_k(torch.eye(5), 1).a_to_b == 1.0
    swapped = recall_at_k(HAND_MADE.T, 1)
    original = recall_at_k(HAND_MADE, 1)
    assert (swapped.a_to_b, swapped.b_to_a) == (original.b_to_a, original.a_to_b)


@pytest.mark.parametrize("k", [0, 5, 1.5])
def test_recall_at_k_rejects_k_outside_one_to_n(k):
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(HAND_MADE, k)


def test_recall_at_k_rejects_bad_similarity_and_labels():
    with pytest.raises(ValueError, match="similarity"):
        recall_at_k(torch.zeros(3, 4), 1)
    with pytest.raises(ValueError, match="labels_b"):
        recall_at_k(HAND_MADE, 1, labels_a=torch.zeros(4))
    with pytest.raises(ValueError, match="labels_a must have shape"):
        recall_at_k(HAND_MADE, 1, labels_a=torch.zeros(3), labels_b=torch.zeros(4))


def test_zero_shot_classify_picks_the_most_similar_prompt():
    prompts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    items = torch.tensor([[5.0, 1.0], [0.1, 3.0], [-2.0, -0.5], [0.3, 0.2]])
    assert zero_shot_classify(items, prompts).tolist() == [0, 1, 2, 0]


def test_zero_shot_classify_averages_several_normalised_prompts_per_class():
    # Class 0 prompts point at +x and +y (prototype along the diagonal); class 1 at -x.
    prompts = torch.tensor([[[1.0, 0.0], [0.0, 100.0]], [[-1.0, 0.0], [-1.0, 0.0]]])
    items = torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.2]])
    assert zero_shot_classify(items, prompts).tolist() == [0, 0, 1]


def test_zero_shot_classify_rejects_bad_prompts_and_zero_norm_items():
    with pytest.raises(ValueError, match="prompt_features must be"):
        zero_shot_classify(torch.randn(3, 2), torch.randn(2))
    with pytest.raises(ValueError, match="prompt_features has zero-norm"):
        zero_shot_classify(torch.randn(3, 2), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="item_features has zero-norm"):
        zero_shot_classify(torch.zeros(3, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="prompt_features has width 3"):
        zero_shot_classify(torch.randn(3, 2), torch.randn(4, 3))
