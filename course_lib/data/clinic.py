"""A synthetic clinic: chest-X-ray-like films, written reports and breath sounds.

SYNTHETIC TEACHING DATA, NOT MEDICAL ADVICE. The patients, findings and rules below are
invented to make a fusion exercise (chapter 08) in which the choice of strategy matters.
They are loosely inspired by chest medicine and must never be used to reason about people.

Each patient has a diagnosis among :data:`CLASS_NAMES` (a quarter each) and three records:

- ``images`` (N, 1, 32, 32): a frontal chest film. Lungs are dark, bone and soft tissue
  bright. As on a real radiograph, the patient's RIGHT lung is on the LEFT of the image. An
  opacity is a bright patch in one of four zones (right/left x upper/lower), small or large.
- ``reports`` (N strings): symptoms, a cough with its duration, negations ("No fever, no
  night sweats."), and sometimes a previous film ("An X-ray 7 months ago showed an opacity
  in the left upper zone.").
- ``waveforms`` (N, 4000): 1 s of breath sound at 4 kHz (digital stethoscopes record at
  4 kHz: breath sounds lie below 2 kHz): breath noise, plus a wheeze (a tone during
  expiration) or crackles (clicks during inspiration), heart thumps and background noise.

Generative rules (probabilities in the module's tables; hidden codes in ``latents``):

- healthy: a clear film (4 %: an incidental opacity, already on a previous film half of the
  time), few symptoms, many negations, normal breath sounds.
- pneumonia: an opacity (70 % large) in any zone; fever, a cough of days; crackles (65 %).
  If a previous film is mentioned (70 %), it showed an opacity in ANOTHER zone (an old,
  healed episode): the opacity on today's film is NEW.
- tuberculosis-like: an opacity (65 % small) in any zone; weight loss, night sweats, a cough
  of weeks; crackles (45 %) or normal sounds. 90 % of reports mention a previous film with
  the opacity in the SAME zone: it has PERSISTED for months.
- asthma/COPD-like: a clear film (4 % incidental opacities, as for healthy patients),
  breathlessness, a cough of weeks, a wheeze (80 %).

Some classes need two modalities together. An opacity on the film means pneumonia or
tuberculosis-like, and which one depends on the report: an opacity in the zone that the
previous film names has persisted (tuberculosis-like); one elsewhere is new (pneumonia).
Which zone a report names says nothing about the diagnosis by itself, and neither does
which zone an opacity is in, so only a model that sees both records at once can compare
them: decision-level (late) fusion cannot. Healthy and asthma/COPD-like both have clear
films; breathlessness (text) and a wheeze (audio) together separate them.

Best accuracies reachable from the hidden variables (the Bayes-optimal rule with oracle
features, computed exactly by :func:`bayes_ceilings`; ``tests/test_clinic.py`` asserts them):

===============================================  =======
what the model sees                              ceiling
===============================================  =======
image alone                                      0.5775
text alone                                       0.6828
text alone, ignoring negation                    0.5144
audio alone                                      0.5825
image + text                                     0.8893
image + audio                                    0.7527
text + audio                                     0.7600
all three (the fusion ceiling)                   0.9264
decision-level: any function of the three        0.8375
single-modality posteriors (late fusion's best)
===============================================  =======

Models trained on the rendered records stay below these: noise hides some findings, and a
few thousand patients do not pin down every rule.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from dataclasses import dataclass

import numpy as np
import torch

from course_lib._validation import (
    ArgumentTypeError,
    as_indices,
    check_allocation,
    check_choice,
    check_fields,
    check_flag,
    check_int,
    describe,
)

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
DOCUMENTED_CEILINGS = {
    "image": 0.5775, "text": 0.6828, "text ignoring negation": 0.5144, "audio": 0.5825,
    "image+text": 0.8893, "image+audio": 0.7527, "text+audio": 0.7600,
    "image+text+audio": 0.9264, "decision-level": 0.8375,
}

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


@dataclass
class ClinicData:
    """One split of synthetic patients (synthetic teaching data, not medical advice).

    Shape:
        images: (N, 1, 32, 32) float32 in [0, 1]
        waveforms: (N, 4000) float32 in [-1, 1], 1 s at 4 kHz
        labels: (N,) int64 in 0..3, indices into ``class_names``
        reports: list of N strings
        latents: name -> (N,) int64 numpy array, the hidden variables behind the records
            (see :data:`LATENT_NAMES`): for evaluation and oracle ceilings only
    """

    images: torch.Tensor
    reports: list[str]
    waveforms: torch.Tensor
    labels: torch.Tensor
    latents: dict[str, np.ndarray]
    split: str = "train"
    sample_rate: int = SAMPLE_RATE
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        check_fields(self, ("images", "waveforms", "labels"), ("reports",))
        if not isinstance(self.latents, dict):
            raise ArgumentTypeError(f"latents must be a dict, got {describe(self.latents)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor | np.ndarray | list[int]) -> ClinicData:
        """The patients at ``indices``, in that order: integer positions in [0, N) (a list,
        numpy array or tensor), or a bool mask of N entries (the patients where it is True).

        Raises:
            ValueError / TypeError: naming ``indices``, for positions out of range, a mask of
                the wrong length, or floats.
        """
        if isinstance(indices, (list, tuple, range, np.ndarray, torch.Tensor)):
            raw = np.asarray(indices) if not isinstance(indices, torch.Tensor) \
                else indices.detach().cpu().numpy()
            if raw.dtype.kind in "iu" and raw.size and (raw.min() < 0 or raw.max() >= len(self)):
                raise ValueError(f"indices must be in [0, {len(self)}), got values from "
                                 f"{int(raw.min())} to {int(raw.max())}")
        index = as_indices("indices", indices, len(self))  # a bool mask -> its True rows
        rows = index.numpy()
        return ClinicData(self.images[index], [self.reports[i] for i in rows],
                          self.waveforms[index], self.labels[index],
                          {k: v[rows] for k, v in self.latents.items()}, self.split,
                          self.sample_rate, self.class_names)



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


VALIDATION_FRACTION = 0.2  # of the training patients
PATIENT_VALUES = IMAGE_SIZE * IMAGE_SIZE + CLIP_SAMPLES  # stored values per patient
SPLITS = ("train", "test", "fit", "validation")


def validation_rows(n_train: int, seed: int = 0) -> np.ndarray:
    """Which of the ``n_train`` training patients form the validation split (sorted rows).

    A fixed random 20 % for each ``seed`` (from its own random stream, so it does not move
    when anything else changes); ``"fit"`` is the rest.
    """
    n_train = _count("n_train", n_train, 2)
    check_allocation("n_train", n_train * PATIENT_VALUES)
    seed = _count("seed", seed, 0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7_011]))
    count = max(1, round(VALIDATION_FRACTION * n_train))
    return np.sort(rng.permutation(n_train)[:count])


def load_clinic(split: str = "train", n_patients: int | None = None, seed: int = 0) -> ClinicData:
    """Generate one split of the synthetic clinic (deterministic for a given split and seed).

    Args:
        split: "train" or "test" (drawn from independent random streams), or the two parts of
            the training patients for choosing hyperparameters: "validation" (a fixed 20 % of
            them, :func:`validation_rows`) and "fit" (the other 80 %). Fit, validation and test
            share no patient.
        n_patients: how many patients (default 2400 for train, 1200 for test); for "fit" and
            "validation", the size of the training split they are carved from.
        seed: a non-negative integer; the same seed gives the same patients.

    Raises:
        ValueError: for an unknown split, a negative or non-integer seed, or more patients
            than fit in the course's memory limit (about 13,000).
    """
    split = check_choice("split", split, SPLITS)
    seed = _count("seed", seed, 0)
    if n_patients is not None:
        least = 2 if split in ("fit", "validation") else 1
        n_patients = _count("n_patients", n_patients, least)
        check_allocation("n_patients", n_patients * PATIENT_VALUES)
    if split in ("fit", "validation"):
        pool = _generate("train", n_patients or DEFAULT_SIZES["train"], int(seed))
        held = validation_rows(len(pool), seed)
        if split == "validation":
            rows = held
        else:
            rows = np.setdiff1d(np.arange(len(pool)), held)
        return dataclasses.replace(pool.subset(rows), split=split)
    if n_patients is None:
        n_patients = DEFAULT_SIZES[split]
    generated = _generate(split, n_patients, int(seed))
    return generated.subset(np.arange(len(generated)))  # a copy: the cache stays untouched


@functools.lru_cache(maxsize=2)
def _generate(split: str, n_patients: int, seed: int) -> ClinicData:
    """The patients of ``split`` (cached: fit and validation are carved from one train)."""
    streams = np.random.SeedSequence([int(seed), list(DEFAULT_SIZES).index(split)]).spawn(4)
    latents = sample_latents(n_patients, np.random.default_rng(streams[0]))
    labels = torch.from_numpy(latents.pop("label"))
    images = _render_images(latents, np.random.default_rng(streams[1]))
    reports = _render_reports(latents, np.random.default_rng(streams[2]))
    waveforms = _render_sounds(latents, np.random.default_rng(streams[3]))
    return ClinicData(torch.from_numpy(images), reports, torch.from_numpy(waveforms), labels,
                      latents, split)


# ----------------------------------------------------------------------------- images
def _sigmoid(value: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * value))  # the logistic function, without overflow


def _render_images(latents: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Chest films for the latent findings: (N, 1, 32, 32) float32 in [0, 1].

    Anatomy (body, two dark lung fields, spine, heart shadow, ribs) varies in position, size
    and contrast; an opacity is a soft bright patch in its zone; pixel noise on top.
    """
    zone = latents["opacity_zone"]
    n = len(zone)

    def per_patient(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, n).astype(np.float32)[:, None, None]

    rows, cols = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    scale = per_patient(0.93, 1.07)
    xs = (cols[None] - 15.5 - per_patient(-1, 1)) / scale
    ys = (rows[None] - 16.0 - per_patient(-1, 1)) / scale
    body = _sigmoid((1 - (xs / 15) ** 2 - (ys / 17) ** 2) * 8)
    lungs = sum(_sigmoid((1 - ((xs - cx) / 5.3) ** 2 - ((ys + 0.5) / 10.5) ** 2) * 6)
                for cx in (-6.0, 6.0))
    ribs = 0.06 * lungs * (0.5 + 0.5 * np.sin(2 * np.pi * (ys + 0.04 * xs**2) / 4.2
                                              + per_patient(0, 2 * np.pi)))
    image = (0.08 + 0.47 * body - 0.33 * lungs + ribs + 0.25 * np.exp(-(xs / 1.8) ** 2) * body
             + 0.2 * np.exp(-((xs - 3.5) / 3.5) ** 2 - ((ys - 5) / 3.2) ** 2))
    # The patient's right lung (zones 1, 2) is on the image's left; upper zones are 1 and 3.
    centre_x = np.where(zone <= 2, -6.0, 6.0)[:, None, None] + per_patient(-1.2, 1.2)
    centre_y = np.where(zone % 2 == 1, -5.5, 5.0)[:, None, None] + per_patient(-1.5, 1.5)
    large = latents["opacity_large"][:, None, None] == 1
    sigma = np.where(large, per_patient(2.4, 3.2), per_patient(1.2, 1.7))
    amplitude = per_patient(0.2, 0.4) * (zone > 0)[:, None, None]
    distance2 = (xs - centre_x) ** 2 + (ys - centre_y) ** 2
    offset_x, offset_y = per_patient(-2, 2), per_patient(-2, 2)
    satellite = (xs - centre_x - offset_x) ** 2 + (ys - centre_y - offset_y) ** 2
    patch = np.exp(-distance2 / (2 * sigma**2)) + 0.5 * np.exp(-satellite / (2 * sigma**2))
    image = image + amplitude * patch * (0.3 + 0.7 * lungs)
    image = (image - 0.4) * per_patient(0.85, 1.15) + 0.4 + per_patient(-0.05, 0.05)
    image = image + per_patient(0.03, 0.07) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)[:, None]


# ----------------------------------------------------------------------------- reports
STOP_WORDS = ("a", "an", "and", "or", "of", "for", "in", "the", "has", "had", "reports",
              "complains", "was", "is", "year", "old", "since")
NEGATION_CUES = ("no", "denies", "without", "not", "never")
SCOPE_ENDS = (".", ";", "but")  # a negation covers the rest of its sentence
REPORT_VOCABULARY = (
    "fever", "weight", "loss", "night", "sweats", "breathlessness", "cough", "dry",
    "productive", "days", "weeks", "months", "ago", "previous", "x", "ray", "film", "showed",
    "opacity", "clear", "right", "left", "upper", "lower", "zone", "woman", "man", "smoker",
    "smoked",
)
_AFFIRMED = ("Reports {}.", "Complains of {}.", "Has {}.")
_NEGATED_JOINED = ("Denies {}.", "Without {}.")


def _join(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {conjunction} " + words[-1]


def _report(latent: dict[str, int], rng: np.random.Generator) -> str:
    age = int(rng.integers(18, 86))
    opening = f"{age}-year-old {'woman' if rng.random() < 0.5 else 'man'}."
    sentences = [["Smoker.", "Never smoked.", "Not a smoker."][int(rng.integers(3))]]
    kind = ["", "dry ", "productive "][int(rng.integers(3))]
    if latent["cough"] == 1:
        sentences.append(f"A {kind}cough for {int(rng.integers(2, 7))} days.".capitalize())
    elif latent["cough"] == 2:
        sentences.append(f"A {kind}cough for {int(rng.integers(3, 13))} weeks.".capitalize())
    elif rng.random() < 0.5:
        sentences.append("No cough.")
    affirmed = [s for s in SYMPTOMS if latent[s] == 1]
    negated = [s for s in SYMPTOMS if latent[s] == 2]
    rng.shuffle(affirmed)
    rng.shuffle(negated)
    if affirmed:
        sentences.append(_AFFIRMED[int(rng.integers(3))].format(_join(affirmed, "and")))
    if negated:
        if rng.random() < 0.5:
            sentences.append(", ".join(f"no {s}" for s in negated).capitalize() + ".")
        else:
            template = _NEGATED_JOINED[int(rng.integers(2))]
            sentences.append(template.format(_join(negated, "or")))
    months = int(rng.integers(3, 25))
    if latent["prior_zone"] > 0:
        where = ZONE_NAMES[latent["prior_zone"]]
        sentences.append([f"An X-ray {months} months ago showed an opacity in the {where} zone.",
                          f"Previous film ({months} months ago): opacity in the {where} zone."]
                         [int(rng.integers(2))])
    elif rng.random() < 0.3:
        sentences.append(f"A previous X-ray {months} months ago was clear.")
    rng.shuffle(sentences)
    return " ".join([opening, *sentences])


def _render_reports(latents: dict[str, np.ndarray], rng: np.random.Generator) -> list[str]:
    """One short clinical note per patient, written from the latent symptoms and history."""
    names = ("prior_zone", *SYMPTOMS, "cough")
    return [_report({k: int(latents[k][i]) for k in names}, rng)
            for i in range(len(latents["cough"]))]


def report_tokens(report: str, negation_aware: bool = True) -> list[str]:
    """Lower-case content words of a report; inside a negation's scope they become "no <word>".

    A negation cue (:data:`NEGATION_CUES`) opens a scope that runs to the end of the sentence
    (or to "but"): a simplified NegEx, the classic clinical negation detector. Stop words and
    numbers are dropped.

    >>> report_tokens("No fever. Reports night sweats.")
    ['no fever', 'night', 'sweats']
    """
    if not isinstance(report, str):
        raise ArgumentTypeError(f"report must be a string, got {type(report).__name__}")
    negation_aware = check_flag("negation_aware", negation_aware)
    tokens, negated = [], False
    for word in re.findall(r"[a-z]+|[.;]", report.lower()):
        if word in SCOPE_ENDS:
            negated = False
        elif word in NEGATION_CUES:
            negated = True
        elif word not in STOP_WORDS:
            tokens.append(f"no {word}" if negated and negation_aware else word)
    return tokens


def bag_of_words(reports: list[str], negation_aware: bool = True) -> torch.Tensor:
    """Word counts over :data:`REPORT_VOCABULARY` (and its negated forms when negation-aware).

    Shape:
        output: (N, V) float32 with V = len(REPORT_VOCABULARY), or (N, 2 V) when
        ``negation_aware``: columns for each word, then for "no <word>".
    """
    if isinstance(reports, (str, torch.Tensor, np.ndarray)) or not isinstance(
            reports, (list, tuple)) or not all(isinstance(r, str) for r in reports):
        raise ArgumentTypeError(f"reports must be a list of strings (one report per patient), "
                                f"got {describe(reports)}")
    negation_aware = check_flag("negation_aware", negation_aware)
    check_allocation("reports", len(reports) * 2 * len(REPORT_VOCABULARY))
    words = list(REPORT_VOCABULARY)
    if negation_aware:
        words += [f"no {w}" for w in REPORT_VOCABULARY]
    column = {w: i for i, w in enumerate(words)}
    counts = torch.zeros(len(reports), len(words))
    for row, report in enumerate(reports):
        for token in report_tokens(report, negation_aware):
            if token in column:
                counts[row, column[token]] += 1
    return counts


# ----------------------------------------------------------------------------- sounds
INSPIRATION = np.sin(np.pi * np.clip(np.arange(CLIP_SAMPLES) / CLIP_SAMPLES / 0.4, 0, 1)) ** 2
EXPIRATION = np.sin(np.pi * np.clip((np.arange(CLIP_SAMPLES) / CLIP_SAMPLES - 0.45) / 0.5, 0, 1)
                    ) ** 2


def _cycle(template: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The 1 s ``template`` started at each of ``offsets`` (wrapping around): (N, L) float32."""
    twice = np.tile(template.astype(np.float32), 2)
    return np.stack([twice[CLIP_SAMPLES - offset: 2 * CLIP_SAMPLES - offset] for offset in offsets])


def _add_events(waveform: np.ndarray, rows: np.ndarray, starts: np.ndarray,
                kernels: np.ndarray) -> None:
    """Add one kernel per event (E, K) into ``waveform`` at (row, start), wrapping around."""
    columns = (starts[:, None] + np.arange(kernels.shape[1])[None]) % CLIP_SAMPLES
    np.add.at(waveform, (np.broadcast_to(rows[:, None], columns.shape), columns), kernels)


def _damped_sines(length_s: float, decay_s: np.ndarray, hz: np.ndarray) -> np.ndarray:
    """One damped sinusoid per row: exp(-t / decay) sin(2 pi hz t), (E, length) float32."""
    t = np.arange(int(length_s * SAMPLE_RATE))[None] / SAMPLE_RATE
    return (np.exp(-t / decay_s[:, None]) * np.sin(2 * np.pi * hz[:, None] * t)).astype(np.float32)


def _render_sounds(latents: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """1 s breath sounds at 4 kHz: (N, 4000) float32 in [-1, 1].

    Breath noise (150-1200 Hz) swells on inspiration and expiration; a wheeze is a tone
    (250-650 Hz, with a harmonic and a slight glide) during expiration; crackles are 8-16
    short damped clicks (400-1200 Hz) during inspiration; two heart thumps (40-70 Hz) and
    background noise on top. The breath cycle starts at a random time (recordings are not
    aligned with each other) and wraps around the second.
    """
    sound = latents["sound"]
    n = len(sound)
    offsets = rng.integers(0, CLIP_SAMPLES, n)
    inspiration, expiration = _cycle(INSPIRATION, offsets), _cycle(EXPIRATION, offsets)
    freqs = np.fft.rfftfreq(CLIP_SAMPLES, 1 / SAMPLE_RATE)
    # White noise has independent Gaussian Fourier coefficients: draw them, keep the band.
    spectrum = rng.standard_normal((n, len(freqs)), dtype=np.float32) + 1j * rng.standard_normal(
        (n, len(freqs)), dtype=np.float32)
    band = (_sigmoid((freqs - 150) / 30) * _sigmoid((1200 - freqs) / 150)).astype(np.float32)
    breath = np.fft.irfft(spectrum * band, n=CLIP_SAMPLES, axis=1).astype(np.float32)
    waveform = breath / breath.std(axis=1, keepdims=True) * (inspiration + 0.6 * expiration)
    waveform += rng.uniform(0.05, 0.3, (n, 1)).astype(np.float32) * rng.standard_normal(
        (n, CLIP_SAMPLES), dtype=np.float32)
    wheezing = np.flatnonzero(sound == 2)
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    start_hz = rng.uniform(250, 650, (len(wheezing), 1))
    f0 = start_hz * (1 + rng.uniform(-0.15, 0.15, (len(wheezing), 1)) * t)
    cycles = 2 * np.pi * np.cumsum(f0, axis=1) / SAMPLE_RATE
    tone = (np.sin(cycles) + 0.3 * np.sin(2 * cycles)) * np.sqrt(expiration[wheezing])
    waveform[wheezing] += (rng.uniform(0.7, 1.5, (len(wheezing), 1)) * tone).astype(np.float32)
    # Crackles: each crackling patient has 8-16 clicks at random moments of inspiration.
    crackling = np.flatnonzero(sound == 1)
    counts = rng.integers(8, 17, len(crackling))
    rows = np.repeat(crackling, counts)
    inside = np.flatnonzero(INSPIRATION > 0.3)  # the loud part of the inspiration
    starts = offsets[rows] + rng.integers(inside[0], inside[-1] + 1, len(rows))
    clicks = _damped_sines(0.012, np.repeat(rng.uniform(0.001, 0.003, len(crackling)), counts),
                           np.repeat(rng.uniform(400, 1200, len(crackling)), counts))
    gains = rng.uniform(4, 8, len(rows)) * rng.choice([-1, 1], len(rows))
    _add_events(waveform, rows, starts, gains[:, None].astype(np.float32) * clicks)
    # Heart: two thumps half a second apart (give or take 50 ms).
    first = rng.integers(0, CLIP_SAMPLES, n)
    second = first + CLIP_SAMPLES // 2 + rng.integers(-200, 200, n)
    thumps = _damped_sines(0.1, np.full(n, 0.02), rng.uniform(40, 70, n))
    thumps *= rng.uniform(4, 12, (n, 1)).astype(np.float32)
    _add_events(waveform, np.concatenate([np.arange(n)] * 2), np.concatenate([first, second]),
                np.concatenate([thumps, thumps]))
    peak = np.abs(waveform).max(axis=1, keepdims=True)
    return (waveform / peak * rng.uniform(0.5, 0.9, (n, 1))).astype(np.float32)


# ----------------------------------------------------------------------------- oracle ceilings
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
