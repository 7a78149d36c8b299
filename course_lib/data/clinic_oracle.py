"""The clinic's oracle ceilings: the best accuracy any model can reach from each set of records.

Computed exactly from the generative model's tables (:mod:`course_lib.data.clinic_model`):
:func:`joint_table` is P(class, what the film, the report and the sound show);
:func:`bayes_ceilings` the accuracy of the Bayes-optimal rule for each set of records (and
for decision-level fusion), which :data:`DOCUMENTED_CEILINGS` records;
:func:`bayes_posterior` each patient's P(class | records) from their hidden findings.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

from course_lib._validation import ArgumentTypeError, describe
from course_lib.data.clinic_model import (
    CLASS_NAMES,
    CLASS_PRIOR,
    COUGH_KINDS,
    COUGH_PROBS,
    LARGE_OPACITY_PROB,
    LATENT_NAMES,
    OPACITY_ZONE_PROBS,
    POLARITIES,
    SOUND_KINDS,
    SOUND_PROBS,
    SYMPTOM_PROBS,
    SYMPTOMS,
    ZONE_NAMES,
    prior_zone_probs,
)

# What bayes_ceilings() computes, to four digits (the table of course_lib.data.clinic).
DOCUMENTED_CEILINGS = {
    "image": 0.5775, "text": 0.6828, "text ignoring negation": 0.5144, "audio": 0.5825,
    "image+text": 0.8893, "image+audio": 0.7527, "text+audio": 0.7600,
    "image+text+audio": 0.9264, "decision-level": 0.8375,
}
AXES = {"image": (1,), "text": (2, 3, 4), "audio": (5,)}  # axes of the joint table


@functools.lru_cache(maxsize=1)
def joint_table() -> np.ndarray:
    """P(class, image finding, prior zone, symptoms, cough, sound), exactly, from the tables.

    Shape: (4 classes, 9 image findings, 5 prior zones, 81 symptom polarities, 3 coughs,
    3 sounds). Image finding 0 is a clear film, 1 + 2 (zone - 1) + large an opacity; the
    symptom index is the base-3 number of the four polarities (fever most significant).
    """
    classes = len(CLASS_NAMES)
    table = np.zeros((classes, 9, 5, 81, 3, 3))
    polarity_sets = list(itertools.product(range(3), repeat=len(SYMPTOMS)))
    for y in range(classes):
        symptoms = np.array([np.prod([SYMPTOM_PROBS[y, k, p] for k, p in enumerate(ps)])
                             for ps in polarity_sets])
        text = symptoms[:, None] * COUGH_PROBS[y][None, :]
        for finding in range(9):
            zone, large = (0, 0) if finding == 0 else (1 + (finding - 1) // 2, (finding - 1) % 2)
            p_image = OPACITY_ZONE_PROBS[y, zone]
            if zone:
                p_image *= LARGE_OPACITY_PROB[y] if large else 1 - LARGE_OPACITY_PROB[y]
            prior = prior_zone_probs(y, zone)
            table[y, finding] = (CLASS_PRIOR[y] * p_image * prior[:, None, None, None]
                                 * text[None, :, :, None] * SOUND_PROBS[y][None, None, None, :])
    return table


def _marginal(modalities: tuple[str, ...]) -> np.ndarray:
    """The joint table summed over every axis that ``modalities`` do not observe."""
    unknown = [m for m in modalities if m not in AXES]
    if unknown or not modalities:
        raise ValueError(f"modalities must be a non-empty subset of {tuple(AXES)}, got "
                         f"{modalities!r}")
    kept = {axis for m in modalities for axis in AXES[m]}
    hidden = tuple(axis for axis in range(1, 6) if axis not in kept)
    return joint_table().sum(axis=hidden, keepdims=True)


def _best_accuracy(table: np.ndarray) -> float:
    """Accuracy of the Bayes rule: sum over observations of max over classes of P(y, obs)."""
    return float(table.reshape(len(table), -1).max(axis=0).sum())


def _posterior_ids(marginal: np.ndarray) -> np.ndarray:
    """An integer id per observation, equal for observations with the same class posterior."""
    flat = marginal.reshape(len(marginal), -1)
    posterior = np.round(flat / flat.sum(axis=0, keepdims=True), 10)
    return np.unique(posterior.T, axis=0, return_inverse=True)[1].reshape(marginal.shape[1:])


def bayes_ceilings() -> dict[str, float]:
    """The best accuracy any model can reach from each set of modalities (oracle latents).

    Returns a dict with keys "image", "text", "audio", "text ignoring negation", "image+text",
    "image+audio", "text+audio", "image+text+audio", and "decision-level": the best accuracy
    of ANY function of the three single-modality Bayes posteriors (what decision-level late
    fusion can reach at most when its per-modality models are perfect).
    """
    ceilings = {}
    for subset in (("image",), ("text",), ("audio",), ("image", "text"), ("image", "audio"),
                   ("text", "audio"), ("image", "text", "audio")):
        ceilings["+".join(subset)] = _best_accuracy(_marginal(subset))
    text = _marginal(("text",)).reshape(len(CLASS_NAMES), 5, *[3] * len(SYMPTOMS), 3)
    for axis in range(2, 2 + len(SYMPTOMS)):  # merge "affirmed" and "negated" into "mentioned"
        mentioned = text.take([1], axis=axis) + text.take([2], axis=axis)
        text = np.concatenate([text.take([0], axis=axis), mentioned], axis=axis)
    ceilings["text ignoring negation"] = _best_accuracy(text)
    ids = [_posterior_ids(_marginal((m,))).reshape(-1) for m in ("image", "text", "audio")]
    joint = joint_table().reshape(len(CLASS_NAMES), 9, 5 * 81 * 3, 3)
    grouped = np.zeros((len(CLASS_NAMES), ids[0].max() + 1, ids[1].max() + 1, ids[2].max() + 1))
    index = np.ix_(ids[0], ids[1], ids[2])
    for y in range(len(CLASS_NAMES)):
        np.add.at(grouped[y], index, joint[y])
    ceilings["decision-level"] = _best_accuracy(grouped)
    return ceilings


LATENT_SIZES = {"opacity_zone": len(ZONE_NAMES), "opacity_large": 2,
                "prior_zone": len(ZONE_NAMES), **{s: len(POLARITIES) for s in SYMPTOMS},
                "cough": len(COUGH_KINDS), "sound": len(SOUND_KINDS)}


def _check_latents(latents: object) -> dict[str, np.ndarray]:
    """``latents`` as a dict of (N,) integer arrays, each within its latent's range."""
    if not isinstance(latents, dict):
        raise ArgumentTypeError(f"latents must be a dict name -> (N,) integer array (like "
                                f"ClinicData.latents), got {describe(latents)}")
    missing = [name for name in LATENT_NAMES if name not in latents]
    if missing:
        raise ValueError(f"latents lacks {missing} (expected the keys of ClinicData.latents)")
    checked, lengths = {}, set()
    for name in LATENT_NAMES:
        value = latents[name]
        values = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) \
            else np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else None
        if values is None or values.ndim != 1 or values.dtype.kind not in "iu":
            raise ArgumentTypeError(f"latents[{name!r}] must be a (N,) integer array, got "
                                    f"{describe(value)}")
        if values.size and (values.min() < 0 or values.max() >= LATENT_SIZES[name]):
            raise ValueError(f"latents[{name!r}] must lie in [0, {LATENT_SIZES[name]}), got "
                             f"values from {values.min()} to {values.max()}")
        checked[name] = values.astype(np.int64)
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError(f"latents must all have the same length N, got {sorted(lengths)}")
    return checked


def latent_indices(latents: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Each patient's cell of :func:`joint_table` (image, prior, symptoms, cough, sound).

    Shape:
        latents[name]: (N,) integers in each latent's range; each output: (N,).
    """
    latents = _check_latents(latents)
    zone, large = latents["opacity_zone"], latents["opacity_large"]
    finding = np.where(zone == 0, 0, 1 + 2 * (zone - 1) + large)
    symptoms = sum(latents[s] * 3 ** (len(SYMPTOMS) - 1 - k) for k, s in enumerate(SYMPTOMS))
    return finding, latents["prior_zone"], symptoms, latents["cough"], latents["sound"]


def bayes_posterior(latents: dict[str, np.ndarray],
                    modalities: tuple[str, ...] = ("image", "text", "audio")) -> np.ndarray:
    """P(class | what ``modalities`` show) for each patient, from the exact tables.

    Shape:
        latents[name]: (N,); output: (N, 4), rows sum to 1.
    """
    latents = _check_latents(latents)
    if isinstance(modalities, str) or not isinstance(modalities, (tuple, list)):
        raise ArgumentTypeError(f"modalities must be a tuple of names from {tuple(AXES)}, "
                                f"got {describe(modalities)}")
    marginal = _marginal(tuple(modalities))
    cells = [index if marginal.shape[axis] > 1 else np.zeros_like(index)
             for axis, index in enumerate(latent_indices(latents), start=1)]
    scores = marginal[(slice(None), *cells)].T
    return scores / scores.sum(axis=1, keepdims=True)
