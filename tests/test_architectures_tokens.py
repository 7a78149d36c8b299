"""Tests of the discrete image tokens (k-means codebook) and of the gate arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from course_lib.architectures import PatchCodebook, gate_flow, kmeans
from course_lib.vision import patchify


def blobs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0], [6.0, 0.0]], dtype=torch.float64)
    noise = 0.5 * torch.randn(200, 2, generator=generator, dtype=torch.float64)
    return centres.repeat(50, 1) + noise


def test_kmeans_matches_scikit_learn_from_the_same_start():
    points = blobs()
    start = points[[0, 1, 2, 3]] + 0.5  # one point of each blob, nudged
    centroids, assignments = kmeans(points, 4, initial_centroids=start)
    reference = KMeans(4, init=start.numpy(), n_init=1, max_iter=100, tol=0.0,
                       algorithm="lloyd").fit(points.numpy())
    np.testing.assert_allclose(centroids.numpy(), reference.cluster_centers_, atol=1e-10)
    assert assignments.tolist() == reference.labels_.tolist()


def test_kmeans_plus_plus_seeding_finds_the_four_blobs_and_is_repeatable():
    points = blobs()
    centroids, assignments = kmeans(points, 4, seed=3)
    again, _ = kmeans(points, 4, seed=3)
    assert torch.equal(centroids, again)
    found = sorted((round(x), round(y)) for x, y in centroids.tolist())
    assert found == [(0, 0), (0, 6), (5, 5), (6, 0)]
    assert torch.bincount(assignments).tolist() == [50, 50, 50, 50]


def test_kmeans_rejects_bad_inputs():
    with pytest.raises(ValueError, match="num_clusters"):
        kmeans(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="distinct"):
        kmeans(torch.zeros(5, 2), 2)
    with pytest.raises(ValueError, match="points"):
        kmeans(torch.zeros(5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="initial_centroids"):
        kmeans(torch.zeros(5, 2), 2, initial_centroids=torch.zeros(3, 2))


def digit_like_images(n=60, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 8, 8, generator=generator) > 0.6).float()


def test_codebook_ids_live_after_the_text_vocabulary():
    images = digit_like_images()
    codebook = PatchCodebook.fit(images, num_codes=16, patch_size=4, text_vocab_size=300)
    ids = codebook.encode(images)
    assert ids.shape == (60, 4)  # four 4x4 patches per 8x8 image
    assert ids.min() >= 300 and ids.max() < 316
    assert codebook.vocab_size == 316


def test_codebook_picks_the_nearest_code_and_decodes_patches_in_place():
    images = digit_like_images()
    codebook = PatchCodebook.fit(images, num_codes=16, patch_size=4, text_vocab_size=300)
    ids = codebook.encode(images)
    patches = patchify(images, 4)  # (B, 4, 16)
    distances = ((patches[:, :, None] - codebook.centroids[None, None]) ** 2).sum(-1)
    assert torch.equal(ids - 300, distances.argmin(-1))
    rebuilt = codebook.decode(ids)
    assert rebuilt.shape == images.shape
    torch.testing.assert_close(patchify(rebuilt, 4), codebook.centroids[ids - 300])
    exact = codebook.decode(torch.arange(300, 304)[None])  # codes 0..3 laid out 2x2
    torch.testing.assert_close(exact[0, 0, :4, 4:].reshape(16), codebook.centroids[1])
    torch.testing.assert_close(exact[0, 0, 4:, :4].reshape(16), codebook.centroids[2])


def test_codebook_rejects_bad_inputs():
    codebook = PatchCodebook(torch.zeros(4, 16), patch_size=4, text_vocab_size=10)
    with pytest.raises(ValueError, match="ids"):
        codebook.decode(torch.tensor([[3, 10, 11, 12]]))
    with pytest.raises(ValueError, match="images"):
        codebook.encode(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="centroids"):
        PatchCodebook(torch.zeros(4, 15), patch_size=4, text_vocab_size=10)
    with pytest.raises(ValueError, match="text_vocab_size"):
        PatchCodebook(torch.zeros(4, 16), patch_size=4, text_vocab_size=-1)
    with pytest.raises(ValueError, match="grid"):
        codebook.decode(torch.tensor([[10, 11, 12]]), grid=(2, 2))
    with pytest.raises(ValueError, match="images"):
        PatchCodebook.fit(torch.zeros(8, 8), num_codes=4, patch_size=4, text_vocab_size=10)
    with pytest.raises(ValueError, match="patch_size"):
        PatchCodebook.fit(torch.rand(2, 1, 8, 8), num_codes=4, patch_size=3, text_vocab_size=10)


def test_gate_at_one_is_0_7616_and_the_update_is_scaled_by_it():
    hidden, update = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 2.0, -2.0])
    flow = gate_flow(1.0, hidden, update)
    by_hand = (math.e ** 2 - 1) / (math.e ** 2 + 1)
    assert flow.gate == pytest.approx(by_hand, abs=1e-12)
    assert round(flow.gate, 4) == 0.7616
    torch.testing.assert_close(flow.output, hidden + by_hand * update)
    assert flow.relative_change == pytest.approx(by_hand * math.sqrt(8) / math.sqrt(5))
    closed = gate_flow(0.0, hidden, update)
    assert closed.gate == 0.0 and torch.equal(closed.output, hidden)


def test_gate_flow_rejects_bad_inputs():
    with pytest.raises(ValueError, match="alpha"):
        gate_flow(float("nan"), torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="hidden"):
        gate_flow(1.0, torch.ones(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="width"):
        gate_flow(1.0, torch.ones(3), torch.ones(4))
