"""Digit mosaics with a question: the data of chapter 03's "attention emerging" experiment.

Four of the course's handwritten 8x8 digits are laid out as a 2x2 mosaic (16x16 pixels) and
paired with a question token naming one corner ("which digit is top-left?"). The answer is the
digit in that corner, so a model can only answer by looking at the right one of the four image
tiles: the task needs cross-modal attention from the question to the image.

The splits never share a digit image: ``"train"`` and ``"val"`` are a fixed 80/20 cut of
:func:`course_lib.data.digits_av.split_image_indices` ``("train")``, and ``"test"`` uses the
course's test images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course_lib._validation import check_allocation, check_choice, check_fields
from course_lib.data.digits_av import load_digit_images, split_image_indices

QUESTIONS = ("top-left", "top-right", "bottom-left", "bottom-right")
TILE_SIZE = 8
NUM_TILES = len(QUESTIONS)
VAL_FRACTION = 0.2
MOSAIC_SPLITS = ("train", "val", "test")


@dataclass
class DigitMosaics:
    """N mosaics of four digits, one question each.

    Shape:
        tiles: (N, 4, 8, 8) float32 in [0, 1], in reading order (top-left, top-right,
        bottom-left, bottom-right); digits: (N, 4) int64, the digit of each tile;
        questions: (N,) int64 in 0..3 (an index into :data:`QUESTIONS`); answers: (N,) int64,
        ``digits[i, questions[i]]``.
    """

    tiles: torch.Tensor
    digits: torch.Tensor
    questions: torch.Tensor
    answers: torch.Tensor
    split: str

    def __post_init__(self) -> None:
        check_fields(self, ("tiles", "digits", "questions", "answers"))

    def __len__(self) -> int:
        return len(self.answers)

    @property
    def images(self) -> torch.Tensor:
        """The mosaics as pictures, (N, 16, 16)."""
        n = len(self)
        grid = self.tiles.reshape(n, 2, 2, TILE_SIZE, TILE_SIZE)  # (N, row, col, y, x)
        return grid.permute(0, 1, 3, 2, 4).reshape(n, 2 * TILE_SIZE, 2 * TILE_SIZE)


def mosaic_image_indices(split: str) -> np.ndarray:
    """Rows of sklearn's digits that the mosaics of ``split`` draw from (disjoint splits)."""
    split = check_choice("split", split, MOSAIC_SPLITS)
    if split == "test":
        return split_image_indices("test")
    rows = split_image_indices("train")  # already in a fixed random order
    n_val = round(VAL_FRACTION * len(rows))
    return rows[:n_val] if split == "val" else rows[n_val:]


def make_digit_mosaics(split: str, n: int, seed: int) -> DigitMosaics:
    """``n`` random mosaics of the digit images of ``split``, each with a random question.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint sets of digit images).
        n: number of mosaics.
        seed: draws the four images of each mosaic and its question.

    Raises:
        ValueError: naming the argument, for an unknown split, a non-positive ``n`` or a
            negative ``seed``.
    """
    rows = mosaic_image_indices(split)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    check_allocation("n", int(n) * NUM_TILES * TILE_SIZE * TILE_SIZE)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    images, labels = load_digit_images()
    rng = np.random.default_rng(seed)
    chosen = rows[rng.integers(len(rows), size=(n, NUM_TILES))]  # (N, 4) image rows
    questions = rng.integers(NUM_TILES, size=n)
    digits = labels[chosen]
    return DigitMosaics(
        tiles=torch.from_numpy(np.ascontiguousarray(images[chosen])),
        digits=torch.from_numpy(digits),
        questions=torch.from_numpy(questions.astype(np.int64)),
        answers=torch.from_numpy(digits[np.arange(n), questions]),
        split=split,
    )
