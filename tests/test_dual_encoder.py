"""course_lib.contrastive.DualEncoder: two encoders, two projections, CLIP's loss.

Golden numbers: the loss written out with F.cross_entropy over logits built by hand from the
encoders' outputs (normalise W x + b, multiply, scale), in both directions.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.audio import AudioEncoder
from course_lib.contrastive import DualEncoder
from course_lib.vision import ViTEncoder


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return DualEncoder(ViTEncoder(8, 4, 1, dim=16, depth=1, num_heads=2),
                       AudioEncoder(12, dim=16, depth=1, num_heads=2), embed_dim=8)


def _batch(size=5):
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(size, 1, 8, 8, generator=generator),
            torch.randn(size, 12, 30, generator=generator))


def _by_hand(model, images, mels):
    image_vectors = model.image_encoder(images)                       # (B, 16): the CLS vectors
    audio_vectors = model.audio_encoder(mels).mean(dim=1)             # (B, 16): mean over time
    a = image_vectors @ model.image_projection.weight.T + model.image_projection.bias
    b = audio_vectors @ model.audio_projection.weight.T + model.audio_projection.bias
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    return model.logit_scale.log_scale.exp() * a @ b.T                # (B, B)


def test_forward_is_the_scaled_cosine_of_the_projected_encoder_outputs(model):
    images, mels = _batch()
    torch.testing.assert_close(model(images, mels), _by_hand(model, images, mels))
    assert model.embed_images(images).shape == (5, 8) == model.embed_audio(mels).shape


def test_loss_is_clips_symmetric_cross_entropy(model):
    images, mels = _batch()
    logits = _by_hand(model, images, mels)
    labels = torch.arange(5)
    symmetric = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(model.loss(images, mels), symmetric)
    torch.testing.assert_close(model.loss(images, mels, symmetric=False),
                               F.cross_entropy(logits, labels))


def test_starting_scale_is_clips_and_untrained_loss_is_no_better_than_chance(model):
    assert model.logit_scale().item() == pytest.approx(1 / 0.07)
    images, mels = _batch(64)
    assert model.loss(images, mels).item() > math.log(64) - 0.1  # random pairs: no better


def test_loss_trains_both_towers_and_the_scale(model):
    images, mels = _batch()
    model.loss(images, mels).backward()
    for part in (model.image_encoder, model.audio_encoder, model.image_projection,
                 model.audio_projection, model.logit_scale):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_a_few_steps_pull_pairs_together():
    torch.manual_seed(0)
    model = DualEncoder(ViTEncoder(8, 4, 1, dim=16, depth=1, num_heads=2),
                        AudioEncoder(12, dim=16, depth=1, num_heads=2), embed_dim=8)
    images, mels = _batch(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.loss(images, mels).item()
    for _ in range(60):
        optimizer.zero_grad()
        model.loss(images, mels).backward()
        optimizer.step()
        model.logit_scale.clamp_()
    assert model.loss(images, mels).item() < first / 4


def test_encoders_without_dim_need_explicit_widths():
    image_encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    audio_encoder = nn.Sequential(nn.Flatten(), nn.Linear(12 * 30, 6))
    with pytest.raises(ValueError, match="image_dim is needed"):
        DualEncoder(image_encoder, audio_encoder, 4)
    model = DualEncoder(image_encoder, audio_encoder, 4, image_dim=10, audio_dim=6)
    assert model(*_batch(3)).shape == (3, 3)


def test_bad_arguments_are_named(model):
    images, mels = _batch()
    with pytest.raises(ValueError, match="embed_dim"):
        DualEncoder(model.image_encoder, model.audio_encoder, 0)
    with pytest.raises(TypeError, match="audio_encoder"):
        DualEncoder(model.image_encoder, "an encoder", 8)
    with pytest.raises(ValueError, match="images and mels must pair up"):
        model.loss(images, mels[:3])
    with pytest.raises(ValueError, match="symmetric"):
        model.loss(images, mels, symmetric="yes")
    with pytest.raises(ValueError, match="mels"):
        model.embed_audio(torch.zeros(0, 12, 30))
