"""The measuring tools added for honest comparisons: dual encoder, shuffles, flags, curves."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import course_lib.fusion as fusion
import course_lib.fusion_tools as fusion_tools
from course_lib.fusion import (
    DualEncoderMatcher,
    EarlyFusion,
    LateFusion,
    fusion_accuracy,
    fusion_correct,
    modality_shuffle,
    train_fusion,
)


def test_every_measuring_tool_is_importable_from_course_lib_fusion():
    for name in fusion_tools.__all__:
        assert getattr(fusion, name) is getattr(fusion_tools, name), name
        assert name in dir(fusion)
    with pytest.raises(AttributeError, match="no_such_tool"):
        fusion.no_such_tool  # noqa: B018


def test_dual_encoder_logit_is_scaled_cosine_plus_bias():
    torch.manual_seed(0)
    model = DualEncoderMatcher({"image": 6, "audio": 4}, 2, embed_dim=5, hidden_dim=7)
    features = {"image": torch.randn(3, 6), "audio": torch.randn(3, 2, 4)}
    output = model(features)
    assert output.shape == (3, 2)
    first = F.normalize(model.encoders["image"](features["image"]), dim=-1)
    second = F.normalize(model.encoders["audio"](features["audio"].mean(dim=1)), dim=-1)
    expected = 10.0 * F.cosine_similarity(first, second, dim=-1) + 0.0
    torch.testing.assert_close(output[:, 1], expected)
    torch.testing.assert_close(output[:, 0], torch.zeros(3))
    # cross-entropy on [0, s] is the sigmoid (binary cross-entropy) loss on s
    labels = torch.tensor([1, 0, 1])
    torch.testing.assert_close(
        F.cross_entropy(output, labels),
        F.binary_cross_entropy_with_logits(output[:, 1], labels.float()),
    )


def test_dual_encoder_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly two"):
        DualEncoderMatcher({"image": 3}, 2)
    with pytest.raises(ValueError, match="num_classes"):
        DualEncoderMatcher({"image": 3, "audio": 2}, 3)
    model = DualEncoderMatcher({"image": 3, "audio": 2})
    with pytest.raises(ValueError, match="missing"):
        model({"image": torch.randn(2, 3)})


def test_dual_encoder_learns_to_match_digits_where_late_fusion_cannot():
    generator = torch.Generator().manual_seed(0)
    digits_a = torch.randint(0, 5, (1200,), generator=generator)
    match = torch.rand(1200, generator=generator) < 0.5
    other = (digits_a + torch.randint(1, 5, (1200,), generator=generator)) % 5
    digits_b = torch.where(match, digits_a, other)
    tokens = {"image": F.one_hot(digits_a, 5).float()[:, None] + 0.1 * torch.randn(1200, 1, 5,
                                                                                  generator=generator),
              "audio": F.one_hot(digits_b, 5).float()[:, None]}
    labels = match.long()
    torch.manual_seed(0)
    dual = DualEncoderMatcher({"image": 5, "audio": 5}, 2, embed_dim=8, hidden_dim=16)
    train_fusion(dual, tokens, labels, epochs=8, lr=1e-2, progress=False)
    late = LateFusion({"image": 5, "audio": 5}, 2, combine="learned", hidden_dim=16)
    train_fusion(late, tokens, labels, epochs=8, lr=1e-2, progress=False)
    flat = {name: value[:, 0] for name, value in tokens.items()}
    assert fusion_accuracy(dual, flat, labels) > 0.95
    assert abs(fusion_accuracy(late, flat, labels) - 0.5) < 0.06


class _ImageReader(nn.Module):
    """Predicts the class written in column 0 of the image features; ignores the audio."""

    requires_all_modalities = True

    def __init__(self) -> None:
        super().__init__()
        self.input_dims = {"image": 3, "audio": 2}
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, features):
        return F.one_hot(features["image"][:, 0].long(), 3).float()


def test_modality_shuffle_by_hand():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    features = {"image": torch.stack([labels.float(), torch.zeros(6), torch.zeros(6)], dim=1),
                "audio": torch.randn(6, 2)}
    model = _ImageReader()
    result = modality_shuffle(model, features, labels, seed=0)
    assert result["all"] == 1.0 and result["audio shuffled"] == 1.0  # the audio is not used
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    expected = (labels[order] == labels).float().mean().item()  # image of another example
    assert result["image shuffled"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="rows"):
        modality_shuffle(model, {"image": features["image"][:3], "audio": features["audio"]},
                         labels)


def test_fusion_correct_flags_each_example():
    labels = torch.tensor([0, 1, 2, 0])
    features = {"image": torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]),
                "audio": torch.zeros(4, 2)}
    flags = fusion_correct(_ImageReader(), features, labels)
    assert flags.dtype == torch.bool and flags.tolist() == [True, True, False, True]
    assert fusion_accuracy(_ImageReader(), features, labels) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="labels"):
        fusion_correct(_ImageReader(), features, labels[:3])


def test_train_fusion_records_validation_curves():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=generator)
    tokens = {"image": F.one_hot(labels, 3).float()[:, None] + torch.randn(300, 1, 3,
                                                                          generator=generator),
              "audio": torch.randn(300, 2, 2, generator=generator)}
    torch.manual_seed(0)
    model = EarlyFusion({"image": 3, "audio": 4}, 3, hidden_dim=16)
    history = train_fusion(model, {k: v[:200] for k, v in tokens.items()}, labels[:200],
                           epochs=5, progress=False,
                           validation=({k: v[200:] for k, v in tokens.items()}, labels[200:]))
    assert list(history.epochs) == ["train loss", "validation loss", "validation accuracy"]
    flat = {"image": tokens["image"][200:, 0], "audio": tokens["audio"][200:].flatten(1)}
    assert history.epochs["validation accuracy"][-1] == pytest.approx(
        fusion_accuracy(model, flat, labels[200:]))
    logits = model(flat)
    assert history.epochs["validation loss"][-1] == pytest.approx(
        F.cross_entropy(logits, labels[200:]).item(), rel=1e-5)
    with pytest.raises(ValueError, match="validation tokens lack"):
        train_fusion(model, tokens, labels, epochs=1, progress=False,
                     validation=({"image": tokens["image"]}, labels))


def test_late_fusion_validation_loss_is_the_nll_of_its_log_probabilities():
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (60,), generator=generator)
    tokens = {"image": torch.randn(60, 1, 3, generator=generator),
              "audio": torch.randn(60, 1, 2, generator=generator)}
    torch.manual_seed(0)
    model = LateFusion({"image": 3, "audio": 2}, 3, combine="mean", hidden_dim=8)
    history = train_fusion(model, tokens, labels, epochs=1, progress=False,
                           validation=(tokens, labels))
    flat = {name: value[:, 0] for name, value in tokens.items()}
    probabilities = model(flat).exp()
    by_hand = -probabilities[torch.arange(60), labels].log().mean().item()
    assert history.epochs["validation loss"][0] == pytest.approx(by_hand, rel=1e-5)
