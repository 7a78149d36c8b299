"""An interaction dataset: does the spoken digit match the written one?

Each example pairs a handwritten-digit image with a spoken-digit clip; the label is 1 when
they show the same digit and 0 otherwise. Half the pairs match. The digit on each side is
drawn uniformly, and a mismatching partner is drawn uniformly among the other digits, so
the image alone (or the audio alone) says nothing about the label: P(match | image digit)
= P(match | audio digit) = 1/2. Only how the two modalities *combine* decides the label,
which is exactly what decision-level late fusion cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course_lib._validation import (
    MAX_ELEMENTS,
    ArgumentTypeError,
    check_allocation,
    check_fields,
    check_tensor,
)


@dataclass
class MatchPairs:
    """Which image and which clip form each pair, and whether they match.

    Attributes (all int64 tensors of shape ``(N,)``): ``image_index`` and ``audio_index``
    (rows of the image and audio pools), ``image_digits``, ``audio_digits``, and ``labels``
    (1 = same digit, 0 = different).
    """

    image_index: torch.Tensor
    audio_index: torch.Tensor
    image_digits: torch.Tensor
    audio_digits: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        check_fields(self, ("image_index", "audio_index", "image_digits", "audio_digits",
                             "labels"))

    def __len__(self) -> int:
        return len(self.labels)

    def gather(self, image_features: torch.Tensor, audio_features: torch.Tensor
               ) -> dict[str, torch.Tensor]:
        """The pairs' features from per-pool features (computed once per pool, not per pair).

        Shape:
            image_features: ``(N_img, ...)``; audio_features: ``(N_audio, ...)``;
            output: ``{"image": (N, ...), "audio": (N, ...)}``.
        """
        for name, features, index in (("image_features", image_features, self.image_index),
                                      ("audio_features", audio_features, self.audio_index)):
            features = check_tensor(name, features, kind=None, min_ndim=1)
            if index.numel() and len(features) <= int(index.max()):
                raise ValueError(f"{name} has {len(features)} rows, but the pairs use row "
                                 f"{int(index.max())}: give the features of the whole pool")
        image_features = check_tensor("image_features", image_features, kind=None, min_ndim=1)
        audio_features = check_tensor("audio_features", audio_features, kind=None, min_ndim=1)
        return {"image": image_features[self.image_index],
                "audio": audio_features[self.audio_index]}


@dataclass
class DigitMatch:
    """The interaction dataset itself: paired images and clips with a match label.

    Attributes: ``images`` float32 ``(N, 1, 8, 8)``, ``waveforms`` float32 ``(N, 16000)``,
    ``sample_rate``, and ``pairs`` (the :class:`MatchPairs` behind them; ``labels`` is
    ``pairs.labels``).
    """

    images: torch.Tensor
    waveforms: torch.Tensor
    sample_rate: int
    pairs: MatchPairs

    @property
    def labels(self) -> torch.Tensor:
        return self.pairs.labels

    def __post_init__(self) -> None:
        if not isinstance(self.pairs, MatchPairs):
            raise ArgumentTypeError(f"pairs must be a MatchPairs, got {type(self.pairs).__name__}")
        check_fields(self, ("images", "waveforms"))
        if len(self.images) != len(self.pairs):
            raise ValueError(f"images has {len(self.images)} rows but pairs has {len(self.pairs)}")

    def __len__(self) -> int:
        return len(self.pairs)


def _as_digits(name: str, digits: torch.Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    values = np.asarray(digits)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array of digits, got {values.dtype} "
                         f"with shape {values.shape}")
    missing = sorted(set(range(num_classes)) - set(values.tolist()))
    if missing:
        raise ValueError(f"{name} must contain every class 0..{num_classes - 1}; "
                         f"missing {missing}")
    return values


def sample_match_pairs(
    image_digits: torch.Tensor | np.ndarray,
    audio_digits: torch.Tensor | np.ndarray,
    num_pairs: int,
    seed: int = 0,
    num_classes: int = 10,
) -> MatchPairs:
    """Draw ``num_pairs`` (image, clip) pairs, exactly half of them matching.

    Args:
        image_digits: the digit of each image in the image pool, ``(N_img,)``.
        audio_digits: the digit of each clip in the audio pool, ``(N_audio,)``.
        num_pairs: how many pairs; a positive even number (half match, half do not).
        seed: the random seed; the same seed gives the same pairs.
        num_classes: number of digits (every one must occur in both pools).
    """
    if isinstance(num_pairs, bool) or not isinstance(num_pairs, int) or num_pairs <= 0 \
            or num_pairs % 2:
        raise ValueError(f"num_pairs must be a positive even int, got {num_pairs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    check_allocation("num_pairs", 4 * num_pairs, MAX_ELEMENTS)  # indices, labels, draws
    image_pool = _as_digits("image_digits", image_digits, num_classes)
    audio_pool = _as_digits("audio_digits", audio_digits, num_classes)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_pairs) % 2)
    # The image digit is uniform; the audio digit is the same one (match) or the image digit
    # shifted by a uniform offset 1..C-1 (mismatch), which is uniform too, whatever the label.
    image_digit = rng.integers(0, num_classes, num_pairs)
    offset = rng.integers(1, num_classes, num_pairs)
    audio_digit = np.where(labels == 1, image_digit, (image_digit + offset) % num_classes)
    by_image_digit = [np.flatnonzero(image_pool == d) for d in range(num_classes)]
    by_audio_digit = [np.flatnonzero(audio_pool == d) for d in range(num_classes)]
    image_index = np.array([rng.choice(by_image_digit[d]) for d in image_digit])
    audio_index = np.array([rng.choice(by_audio_digit[d]) for d in audio_digit])
    return MatchPairs(
        image_index=torch.as_tensor(image_index, dtype=torch.int64),
        audio_index=torch.as_tensor(audio_index, dtype=torch.int64),
        image_digits=torch.as_tensor(image_digit, dtype=torch.int64),
        audio_digits=torch.as_tensor(audio_digit, dtype=torch.int64),
        labels=torch.as_tensor(labels, dtype=torch.int64),
    )


def load_digit_match(
    split: str = "train",
    num_pairs: int = 1000,
    seed: int = 0,
    image_noise: float = 0.0,
    snr_db: float | None = None,
) -> DigitMatch:
    """The "does the spoken digit match the written one?" dataset from ``load_digits_av``.

    Args:
        split: ``"train"``, ``"test"`` (the test clips use held-out voices), or ``"fit"`` /
            ``"validation"``, the two parts of train (see :func:`load_digits_av`).
        num_pairs: positive even number of pairs, half matching.
        seed: seeds both the degradations and the pairing.
        image_noise, snr_db: degradations passed on to ``load_digits_av``.
    """
    from course_lib.data.digits_av import load_digits_av

    source = load_digits_av(split=split, seed=seed, image_noise=image_noise, snr_db=snr_db)
    pairs = sample_match_pairs(source.labels, source.labels, num_pairs, seed=seed)
    return DigitMatch(
        images=torch.as_tensor(source.images)[pairs.image_index],
        waveforms=torch.as_tensor(source.waveforms)[pairs.audio_index],
        sample_rate=source.sample_rate,
        pairs=pairs,
    )
