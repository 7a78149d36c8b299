"""Linear baselines on the course's digits: how hard is one modality, clean and degraded?

A logistic regression on one modality of :func:`course_lib.data.load_digits_av`: the 64 pixels
of an image, or the flattened log-mel spectrogram of a clip (16 kHz, window 400, hop 160,
64 mel bands, 101 frames: 6,464 numbers per clip, from the course's audio front-end
:class:`course_lib.audio.LogMelFrontEnd`, settings in :data:`AUDIO_FRONT_END`). Features are
standardised (mean 0, variance 1 per feature, from the training examples) and the model has an
L2 penalty whose inverse strength is ``C``.

The recipe keeps the three splits apart:

1. every candidate ``C`` is fitted on the ``"fit"`` split and scored on ``"validation"``
   (new recordings of the training voices, new images); the best validation accuracy wins,
   a tie going to the smallest ``C`` (the strongest penalty);
2. the chosen ``C`` is refitted on fit + validation (all of the training data);
3. that model is scored once on ``"test"`` (new images, voices of held-out accents).

The result keeps every test example's right/wrong flag, so that an accuracy gets its Wilson
interval and two settings on the same test examples can be compared pairwise
(:mod:`course_lib.evaluation`). ``tools/build_spoken_digits.py --evaluate`` prints the table
of ``assets/README.md`` with the same function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from course_lib.audio import LogMelFrontEnd
from course_lib.data.digits_av import DigitsAV, load_digits_av
from course_lib.evaluation import Estimate, wilson_estimate

MODALITIES = ("image", "audio")
DEGRADATIONS = ("image_noise", "snr_db", "max_shift_s")
DEFAULT_C_GRID = (0.1, 0.3, 1.0)
N_MELS = 64
# The audio baseline's features: 16 kHz, 25 ms windows every 10 ms, 64 mel bands, 1 s clips.
AUDIO_FRONT_END = LogMelFrontEnd(sample_rate=16000, n_fft=400, hop_length=160, n_mels=N_MELS,
                                 clip_seconds=1.0)
MAX_ITER = 1000


def baseline_features(dataset: DigitsAV, modality: str, n_mels: int = N_MELS,
                      log_floor: float | None = None) -> np.ndarray:
    """The features a linear baseline reads, one row per example.

    Args:
        dataset: a split from :func:`~course_lib.data.load_digits_av`.
        modality: ``"image"`` (the 64 pixels) or ``"audio"`` (flattened log-mel).
        n_mels: mel bands of the audio features.
        log_floor: if given, audio log-mel values below it are raised to it (a quieter
            floor than the log(1e-10) = -23.03 that exact digital silence gets).

    Shape:
        output: (N, 64) for images, (N, n_mels * 101) for audio, float32.

    Raises:
        ValueError: for an unknown ``modality``, or a ``log_floor`` with images.
    """
    _check_modality(modality)
    if modality == "image":
        if log_floor is not None:
            raise ValueError(f"log_floor applies to audio features only, got {log_floor!r} "
                             "with modality='image'")
        return dataset.images.flatten(1).numpy()
    front_end = AUDIO_FRONT_END if n_mels == N_MELS else replace(AUDIO_FRONT_END, n_mels=n_mels)
    log_mel = front_end(dataset.waveforms)  # (N, n_mels, 101)
    if log_floor is not None:
        log_mel = log_mel.clamp(min=float(log_floor))
    return log_mel.flatten(1).numpy()


@dataclass(frozen=True)
class LinearBaseline:
    """One baseline, chosen on validation and scored on test.

    Attributes:
        modality: ``"image"`` or ``"audio"``.
        degradations: the options passed to ``load_digits_av`` (e.g. ``{"snr_db": -10.0}``).
        seed: the loader's seed (pairing of images and clips, and every degradation drawn).
        validation_accuracy: ``C -> accuracy`` on the validation split of the model fitted
            on the fit split; empty when only one ``C`` was given (nothing to choose).
        chosen_c: the ``C`` that was refitted on fit + validation.
        test_correct: (N_test,) bool, whether each test example was classified right.
    """

    modality: str
    degradations: dict[str, float]
    seed: int
    validation_accuracy: dict[float, float]
    chosen_c: float
    test_correct: torch.Tensor = field(repr=False)

    @property
    def test_accuracy(self) -> float:
        """Fraction of the test examples classified right."""
        return float(self.test_correct.double().mean())

    def test_estimate(self, confidence: float = 0.95) -> Estimate:
        """The test accuracy with its Wilson interval over the test examples."""
        return wilson_estimate(self.test_correct, confidence=confidence)


def linear_baseline(modality: str, *, seed: int = 0, c_grid: Sequence[float] = DEFAULT_C_GRID,
                    log_floor: float | None = None, **degradations: float) -> LinearBaseline:
    """Choose ``C`` on validation, refit on fit + validation, score once on test.

    Args:
        modality: ``"image"`` or ``"audio"`` (see :func:`baseline_features`).
        seed: the seed of ``load_digits_av`` for all three splits.
        c_grid: candidate inverse penalty strengths, each > 0; with one value there is no
            choice and no validation fit.
        log_floor: see :func:`baseline_features` (audio only).
        **degradations: ``image_noise``, ``snr_db`` or ``max_shift_s``, passed to
            ``load_digits_av`` for every split.

    Returns:
        a :class:`LinearBaseline`; ``result.test_estimate()`` is the accuracy with its
        interval.

    Raises:
        ValueError: for an unknown modality or degradation, or an empty ``c_grid`` or one
            with a value that is not a positive finite number (and whatever
            ``load_digits_av`` rejects).
    """
    _check_modality(modality)
    unknown = sorted(set(degradations) - set(DEGRADATIONS))
    if unknown:
        raise ValueError(f"degradations must be among {DEGRADATIONS}, got {unknown}")
    grid = tuple(c_grid)
    if not grid:
        raise ValueError("c_grid must hold at least one value of C, got an empty sequence")
    for c in grid:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not (
                math.isfinite(c) and c > 0):
            raise ValueError(f"c_grid must hold positive finite numbers, got {c!r} in {grid}")

    splits = {name: load_digits_av(name, seed=seed, **degradations)
              for name in ("fit", "validation", "test")}
    features = {name: baseline_features(data, modality, log_floor=log_floor)
                for name, data in splits.items()}
    labels = {name: data.labels.numpy() for name, data in splits.items()}

    validation_accuracy: dict[float, float] = {}
    if len(grid) > 1:
        for c in sorted(set(grid)):
            model = _fit(features["fit"], labels["fit"], c)
            validation_accuracy[c] = float(model.score(features["validation"],
                                                       labels["validation"]))
        best = max(validation_accuracy.values())
        chosen = min(c for c, accuracy in validation_accuracy.items() if accuracy == best)
    else:
        chosen = grid[0]
    model = _fit(np.concatenate([features["fit"], features["validation"]]),
                 np.concatenate([labels["fit"], labels["validation"]]), chosen)
    correct = torch.from_numpy(model.predict(features["test"]) == labels["test"])
    return LinearBaseline(modality, dict(degradations), seed, validation_accuracy,
                          float(chosen), correct)


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    """Standardise, then an L2 logistic regression (lbfgs), on one BLAS thread."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))
    with threadpool_limits(limits=1):  # one thread: several times faster on a busy CPU
        return model.fit(x, y)


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
