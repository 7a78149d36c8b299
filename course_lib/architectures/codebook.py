"""Images as discrete tokens in the text vocabulary: k-means patch codebook.

A natively multimodal model reads and writes images when image patches are ids of one shared
vocabulary; :class:`PatchCodebook` is a tiny stand-in for the learned VQ tokenizers such
models use.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from course_lib._validation import (
    MAX_LOOP,
    ArgumentTypeError,
    check_allocation,
    check_int,
    check_tensor,
    describe,
)
from course_lib.architectures._checks import _check_ids, _check_positive_int
from course_lib.vision import patchify

__all__ = ["kmeans", "PatchCodebook"]


def kmeans(points: Tensor, num_clusters: int, iterations: int = 100, seed: int = 0,
           initial_centroids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means with k-means++ seeding (or the given initial centroids).

    Stops when the centroids no longer change or after ``iterations`` rounds; a cluster that
    loses all its points keeps its previous centroid.

    Shape: points (N, D) -> centroids (K, D), assignments (N,) int64 in [0, K).
    """
    points = check_tensor("points", points, shape=("N", "D"), finite=True, nonempty=True)
    num_clusters = _check_positive_int("num_clusters", num_clusters)
    iterations = _check_positive_int("iterations", iterations, MAX_LOOP)
    seed = check_int("seed", seed, minimum=0)
    if num_clusters > len(points):
        raise ValueError(f"num_clusters {num_clusters} exceeds the {len(points)} points")
    check_allocation("num_clusters", len(points) * num_clusters)  # the (N, K) distances
    if initial_centroids is not None:
        initial_centroids = check_tensor("initial_centroids", initial_centroids,
                                         shape=(num_clusters, points.shape[1]), finite=True)
        centroids = initial_centroids.to(points).clone()
    else:
        generator = torch.Generator().manual_seed(seed)
        chosen = [int(torch.randint(len(points), (1,), generator=generator))]
        for _ in range(num_clusters - 1):
            squared = torch.cdist(points, points[chosen]).min(dim=1).values.square()
            if float(squared.sum()) == 0.0:
                raise ValueError(f"num_clusters {num_clusters} exceeds the number of distinct "
                                 f"points ({len(chosen)})")
            chosen.append(int(torch.multinomial(squared.cpu(), 1, generator=generator)))
        centroids = points[chosen].clone()
    for _ in range(iterations):
        assignments = torch.cdist(points, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assignments, points)
        counts = torch.bincount(assignments, minlength=num_clusters).to(points.dtype)[:, None]
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids, torch.cdist(points, centroids).argmin(dim=1)


class PatchCodebook:
    """Image patches -> discrete token ids that share one vocabulary with text.

    A natively multimodal model (Gemini, GPT-4o-style) can read *and write* images when
    images are tokens in its vocabulary. Here each ``patch_size`` x ``patch_size`` patch is
    replaced by its nearest codebook vector (k-means over training patches, a tiny stand-in
    for a learned VQ-VAE); code k becomes token id ``text_vocab_size + k``.

    Shape: images (B, C, H, W) -> :meth:`encode` (B, (H/p)(W/p)) ids in
    [text_vocab_size, text_vocab_size + num_codes); :meth:`decode` inverts up to the
    quantisation error.
    """

    def __init__(self, centroids: Tensor, patch_size: int, text_vocab_size: int,
                 in_channels: int = 1) -> None:
        patch_size = _check_positive_int("patch_size", patch_size)
        in_channels = _check_positive_int("in_channels", in_channels)
        text_vocab_size = check_int("text_vocab_size", text_vocab_size, minimum=0)
        width = in_channels * patch_size * patch_size
        centroids = check_tensor("centroids", centroids, shape=(None, width), finite=True,
                                 nonempty=True)
        self.centroids, self.patch_size = centroids, patch_size
        self.text_vocab_size, self.in_channels = text_vocab_size, in_channels

    @classmethod
    def fit(cls, images: Tensor, num_codes: int, patch_size: int, text_vocab_size: int,
            seed: int = 0) -> PatchCodebook:
        """Learn ``num_codes`` patch prototypes by k-means over every patch of ``images``."""
        images = check_tensor("images", images, ndim=4, finite=True, nonempty=True)
        num_codes = _check_positive_int("num_codes", num_codes)
        patch_size = _check_positive_int("patch_size", patch_size)
        text_vocab_size = check_int("text_vocab_size", text_vocab_size, minimum=0)
        patches = patchify(images, patch_size).reshape(-1, images.shape[1] * patch_size ** 2)
        centroids, _ = kmeans(patches.float(), num_codes, seed=seed)
        return cls(centroids, patch_size, text_vocab_size, images.shape[1])

    @property
    def num_codes(self) -> int:
        return len(self.centroids)

    @property
    def vocab_size(self) -> int:
        """Text ids, then image ids: the size of the shared vocabulary."""
        return self.text_vocab_size + self.num_codes

    def encode(self, images: Tensor) -> Tensor:
        """The image token id of every patch, (B, (H/p)(W/p)), row by row."""
        images = check_tensor("images", images, shape=(None, self.in_channels, None, None))
        patches = patchify(images.to(self.centroids), self.patch_size)  # (B, P, C p p)
        distances = torch.cdist(patches, self.centroids[None].expand(len(patches), -1, -1))
        return distances.argmin(dim=-1) + self.text_vocab_size

    def decode(self, ids: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        """Images rebuilt from image token ids, patches laid out row by row on ``grid``
        (rows, cols) of patches (default: square)."""
        ids = _check_ids("ids", ids, shape=("B", "P"))
        codes = ids - self.text_vocab_size
        if ids.numel() and (codes.min() < 0 or codes.max() >= self.num_codes):
            raise ValueError(f"ids must be image tokens in [{self.text_vocab_size}, "
                             f"{self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        side = math.isqrt(ids.shape[1])
        if grid is None:
            rows, cols = side, side
        elif isinstance(grid, (tuple, list)) and len(grid) == 2:
            rows, cols = (check_int("grid", value, minimum=1) for value in grid)
        else:
            raise ArgumentTypeError(f"grid must be a pair (rows, cols) of patches, got "
                                    f"{describe(grid)}")
        if rows * cols != ids.shape[1]:
            raise ValueError(f"grid {(rows, cols)} does not hold {ids.shape[1]} patches")
        p, c = self.patch_size, self.in_channels
        blocks = self.centroids[codes].reshape(len(ids), rows, cols, c, p, p)
        return blocks.permute(0, 3, 1, 4, 2, 5).reshape(len(ids), c, rows * p, cols * p)
