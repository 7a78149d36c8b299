"""The clinic's generative model: diagnoses, hidden findings and their probability tables.

SYNTHETIC TEACHING DATA, NOT MEDICAL ADVICE. Each patient's diagnosis (:data:`CLASS_NAMES`)
is drawn first, then the hidden findings of :data:`LATENT_NAMES` from the tables below
(:func:`sample_latents`); :mod:`course_lib.data.clinic_records` renders them as a film, a
report and a breath sound, and :mod:`course_lib.data.clinic_oracle` computes from the same
tables the best accuracy any model can reach. The rules in words are in
:mod:`course_lib.data.clinic`.
"""

from __future__ import annotations

import numpy as np

from course_lib._validation import ArgumentTypeError, check_allocation, check_int, describe

CLASS_NAMES = ("healthy", "pneumonia", "tuberculosis-like", "asthma/COPD-like")
CLASS_PRIOR = (0.25, 0.25, 0.25, 0.25)
ZONE_NAMES = ("none", "right upper", "right lower", "left upper", "left lower")
SYMPTOMS = ("fever", "weight loss", "night sweats", "breathlessness")
POLARITIES = ("unmentioned", "affirmed", "negated")
COUGH_KINDS = ("none", "days", "weeks")
SOUND_KINDS = ("normal", "crackles", "wheeze")
SAMPLE_RATE = 4_000
CLIP_SAMPLES = SAMPLE_RATE  # 1 s
IMAGE_SIZE = 32
DEFAULT_SIZES = {"train": 2400, "test": 1200}

# P(opacity zone | class), over ZONE_NAMES (index 0 = no opacity).
OPACITY_ZONE_PROBS = np.array([
    [0.96, 0.01, 0.01, 0.01, 0.01],
    [0.00, 0.25, 0.25, 0.25, 0.25],
    [0.00, 0.25, 0.25, 0.25, 0.25],
    [0.96, 0.01, 0.01, 0.01, 0.01],
])
LARGE_OPACITY_PROB = np.array([0.30, 0.70, 0.35, 0.30])  # given an opacity
# The previous film, given an opacity now: P(same zone), P(another zone, uniform over 3).
PRIOR_SAME_ZONE_PROB = np.array([0.50, 0.00, 0.90, 0.50])
PRIOR_OTHER_ZONE_PROB = np.array([0.00, 0.70, 0.00, 0.00])
PRIOR_WITHOUT_OPACITY_PROB = np.array([0.25, 0.00, 0.00, 0.25])  # any zone, uniform
# P(polarity | class) per symptom, over POLARITIES (unmentioned, affirmed, negated).
SYMPTOM_PROBS = np.array([
    [[0.45, 0.10, 0.45], [0.60, 0.05, 0.35], [0.65, 0.05, 0.30], [0.44, 0.06, 0.50]],
    [[0.35, 0.60, 0.05], [0.55, 0.15, 0.30], [0.55, 0.25, 0.20], [0.50, 0.30, 0.20]],
    [[0.40, 0.30, 0.30], [0.40, 0.45, 0.15], [0.45, 0.40, 0.15], [0.55, 0.20, 0.25]],
    [[0.45, 0.10, 0.45], [0.60, 0.05, 0.35], [0.65, 0.05, 0.30], [0.25, 0.70, 0.05]],
])
COUGH_PROBS = np.array([[0.60, 0.25, 0.15], [0.20, 0.55, 0.25], [0.15, 0.35, 0.50],
                        [0.30, 0.25, 0.45]])
SOUND_PROBS = np.array([[0.88, 0.04, 0.08], [0.30, 0.65, 0.05], [0.50, 0.45, 0.05],
                        [0.15, 0.05, 0.80]])
LATENT_NAMES = ("opacity_zone", "opacity_large", "prior_zone", *SYMPTOMS, "cough", "sound")
MODALITY_LATENTS = {
    "image": ("opacity_zone", "opacity_large"),
    "text": ("prior_zone", *SYMPTOMS, "cough"),
    "audio": ("sound",),
}


def _count(name: str, value: object, minimum: int) -> int:
    """A count argument: an integer (not a bool, not 2.5) of at least ``minimum``."""
    words = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be {words}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {words}, got {value!r}")
    return int(value)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (N, K)."""
    cumulative = np.cumsum(probs, axis=1)
    draws = rng.random((len(probs), 1)) * cumulative[:, -1:]
    return (draws > cumulative).sum(axis=1).clip(max=probs.shape[1] - 1)


def prior_zone_probs(label: int, opacity_zone: int) -> np.ndarray:
    """P(zone named by a previous film | class, current opacity zone), over ZONE_NAMES.

    Args:
        label: a class index in [0, len(CLASS_NAMES)).
        opacity_zone: an index of :data:`ZONE_NAMES` (0 = no opacity).
    """
    label = check_int("label", label, minimum=0, maximum=len(CLASS_NAMES) - 1)
    opacity_zone = check_int("opacity_zone", opacity_zone, minimum=0,
                             maximum=len(ZONE_NAMES) - 1)
    probs = np.zeros(len(ZONE_NAMES))
    if opacity_zone == 0:
        probs[1:] = PRIOR_WITHOUT_OPACITY_PROB[label] / 4
    else:
        probs[opacity_zone] = PRIOR_SAME_ZONE_PROB[label]
        others = [z for z in range(1, 5) if z != opacity_zone]
        probs[others] = PRIOR_OTHER_ZONE_PROB[label] / 3
    probs[0] = 1.0 - probs[1:].sum()
    return probs


def sample_latents(n_patients: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw diagnoses and hidden findings by the rules (no rendering).

    Returns:
        name -> (N,) int64 array for "label" and each of :data:`LATENT_NAMES`.
    """
    n_patients = _count("n_patients", n_patients, 1)
    check_allocation("n_patients", n_patients * 16)  # a few int64 draws per patient
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got "
                         f"{type(rng).__name__}")
    labels = rng.choice(len(CLASS_NAMES), size=n_patients, p=CLASS_PRIOR)
    zone = _categorical(rng, OPACITY_ZONE_PROBS[labels])
    large = (rng.random(n_patients) < LARGE_OPACITY_PROB[labels]) & (zone > 0)
    prior_table = np.array([[prior_zone_probs(y, z) for z in range(5)] for y in range(4)])
    latents = {"label": labels, "opacity_zone": zone, "opacity_large": large.astype(np.int64),
               "prior_zone": _categorical(rng, prior_table[labels, zone])}
    for k, symptom in enumerate(SYMPTOMS):
        latents[symptom] = _categorical(rng, SYMPTOM_PROBS[labels, k])
    latents["cough"] = _categorical(rng, COUGH_PROBS[labels])
    latents["sound"] = _categorical(rng, SOUND_PROBS[labels])
    return {name: value.astype(np.int64) for name, value in latents.items()}
