"""Vision encoder: cut an image into patches, embed each patch, run a transformer (a ViT).

A 224 x 224 image in 16 x 16 patches gives (224 / 16)^2 = 196 patch tokens; a learned CLS
token in front makes 197. After the transformer, either keep the CLS vector (one token for
the whole image) or keep every token (as LLaVA does with its 576 patch tokens).

Patch order and layout (shared by :func:`patchify` and ``F.unfold``): patches are numbered
row by row from the top-left; each patch vector lists channel 0's p x p pixels row by row,
then channel 1's, and so on, i.e. it is the (C, p, p) block flattened.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    MAX_TOKENS,
    check_allocation,
    check_choice,
    check_int,
    check_tensor,
    to_weights_dtype,
)
from course_lib.attention import encoder_layers

MAX_IMAGE_SIZE = 16_384  # pixels per side
MAX_GRID_LINES = 10_000  # lines per direction that patch_grid_lines draws
MAX_DEPTH = 1_024  # transformer blocks


def _check_images(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    images = check_tensor("images", images, kind=None, shape=("B", "C", "H", "W"))
    check_int("patch_size", patch_size, minimum=1)
    height, width = images.shape[-2:]
    for name, size in (("height", height), ("width", width)):
        if size % patch_size:
            raise ValueError(
                f"images {name} {size} is not divisible by patch_size {patch_size}"
            )
    return images


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches, each flattened to one vector.

    Args:
        images: a batch of images (any dtype: this only rearranges values; a numpy array is
            converted).
        patch_size: side p of each square patch; must divide H and W.

    Shape:
        images: (B, C, H, W)
        output: (B, N, p * p * C) with N = (H / p) * (W / p), patches in row-major order.
    """
    images = _check_images(images, patch_size)
    batch, channels, height, width = images.shape
    rows, cols = height // patch_size, width // patch_size
    grid = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    # (B, rows, cols, C, p, p): one (C, p, p) block per patch, patches row by row.
    grid = grid.permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(batch, rows * cols, channels * patch_size * patch_size)


def patch_grid(image_size: int, patch_size: int) -> dict[str, int]:
    """How a square image of side ``image_size`` splits into patches of side ``patch_size``.

    Returns the patches per side, the number of patch tokens (with and without CLS), and
    the ``remainder`` pixels per side that a grid of whole patches leaves uncovered (a ViT
    requires remainder 0: it resizes or crops the image so that the patch size divides it).
    """
    check_int("image_size", image_size, minimum=1)
    check_int("patch_size", patch_size)
    if not 1 <= patch_size <= image_size:
        raise ValueError(f"patch_size must be in [1, image_size={image_size}], got {patch_size}")
    per_side = image_size // patch_size
    return {
        "patches_per_side": per_side,
        "num_patches": per_side * per_side,
        "tokens_with_cls": per_side * per_side + 1,
        "remainder": image_size - per_side * patch_size,
        "values_per_patch": patch_size * patch_size,
    }


def patch_grid_lines(image_size: int, patch_size: int) -> tuple[list, list]:
    """x and y coordinates (pixels, ``None`` between segments) of the patch grid's lines.

    Lines are drawn at every whole-patch boundary from 0 to ``per_side * patch_size``; the
    uncovered remainder (if any) lies beyond the last line. At most ``MAX_GRID_LINES``
    patches per side (a figure cannot show more).
    """
    per_side = patch_grid(image_size, patch_size)["patches_per_side"]
    check_allocation("image_size / patch_size", per_side, MAX_GRID_LINES, "grid lines per side")
    covered = per_side * patch_size
    xs: list = []
    ys: list = []
    for position in range(0, covered + 1, patch_size):
        xs += [position, position, None, 0, covered, None]  # a vertical, then a horizontal line
        ys += [0, covered, None, position, position, None]
    return xs, ys


class PatchEmbedding(nn.Module):
    """Patchify, then one shared linear map from each patch vector to a ``dim``-wide token.

    (This is the same computation as a Conv2d with kernel size = stride = patch_size.)

    Args:
        image_size: side of the square input images (must be divisible by patch_size).
        patch_size: side of each patch.
        in_channels: channels C of the images (1 for grayscale, 3 for RGB).
        dim: width of each patch token.

    Shape:
        images: (B, C, image_size, image_size)
        output: (B, N, dim) with N = (image_size / patch_size) ** 2
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        check_int("image_size", image_size, minimum=1, maximum=MAX_IMAGE_SIZE)
        check_int("patch_size", patch_size, minimum=1)
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not divisible by patch_size {patch_size}"
            )
        check_int("in_channels", in_channels, minimum=1)
        check_int("dim", dim, minimum=1)
        check_allocation("patch_size * patch_size * in_channels * dim",
                         patch_size * patch_size * in_channels * dim, MAX_ELEMENTS, "weights")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.projection = nn.Linear(patch_size * patch_size * in_channels, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = to_weights_dtype("images", images, self, kind="float")
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images must have shape (B, {self.in_channels}, {self.image_size}, "
                f"{self.image_size}) (in_channels={self.in_channels}), got {tuple(images.shape)}"
            )
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images must be {self.image_size} x {self.image_size} (image_size), "
                f"got {tuple(images.shape[-2:])}"
            )
        return self.projection(patchify(images, self.patch_size))


class ViTEncoder(nn.Module):
    """A small Vision Transformer: patch tokens + CLS + learned positions -> pre-norm blocks.

    Args:
        image_size, patch_size, in_channels, dim: as in :class:`PatchEmbedding`.
        depth: number of transformer blocks.
        num_heads: attention heads per block (must divide ``dim``).
        pool: ``"cls"`` returns the CLS token only; ``"none"`` returns every token.
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``dim``.

    Shape:
        images: (B, C, image_size, image_size)
        output: (B, dim) if pool == "cls", else (B, N + 1, dim) with the CLS token first.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int,
                 depth: int, num_heads: int, pool: str = "cls", mlp_ratio: int = 4) -> None:
        super().__init__()
        check_choice("pool", pool, ("cls", "none"))
        check_int("dim", dim, minimum=1)
        check_int("num_heads", num_heads, minimum=1)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        check_int("depth", depth, minimum=1, maximum=MAX_DEPTH)
        check_int("mlp_ratio", mlp_ratio, minimum=1)
        check_allocation("dim * mlp_ratio * dim", dim * mlp_ratio * dim, MAX_ELEMENTS, "weights")
        self.pool, self.dim = pool, dim
        self.patch_embedding = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.num_patches = self.patch_embedding.num_patches
        check_int("(image_size / patch_size) ** 2 patch tokens", self.num_patches,
                  maximum=MAX_TOKENS)
        check_allocation("position embedding (num_patches + 1) * dim",
                         (self.num_patches + 1) * dim, MAX_ELEMENTS, "weights")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embedding = nn.Parameter(torch.zeros(1, self.num_patches + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        self.blocks = encoder_layers(dim, num_heads, depth, mlp_ratio)
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        patch_tokens = self.patch_embedding(images)  # (B, N, dim), images checked there
        cls = self.cls_token.expand(len(patch_tokens), -1, -1)  # (B, 1, dim)
        tokens = torch.cat([cls, patch_tokens], dim=1) + self.position_embedding  # (B, N+1, dim)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.final_norm(tokens)
        return tokens[:, 0] if self.pool == "cls" else tokens
