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

This module holds the dataset (:class:`ClinicData`, :func:`load_clinic`, the validation
split) and exports every name of the clinic; the parts live in :mod:`course_lib.data.
clinic_model` (the generative model and its tables), :mod:`course_lib.data.clinic_records`
(rendering films, reports and sounds), :mod:`course_lib.data.clinic_text` (reading the
reports) and :mod:`course_lib.data.clinic_oracle` (the ceilings).
"""

from __future__ import annotations

import dataclasses
import functools
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
from course_lib.data.clinic_model import (
    CLASS_NAMES,
    CLASS_PRIOR,
    CLIP_SAMPLES,
    COUGH_KINDS,
    COUGH_PROBS,
    DEFAULT_SIZES,
    IMAGE_SIZE,
    LARGE_OPACITY_PROB,
    LATENT_NAMES,
    MODALITY_LATENTS,
    OPACITY_ZONE_PROBS,
    POLARITIES,
    PRIOR_OTHER_ZONE_PROB,
    PRIOR_SAME_ZONE_PROB,
    PRIOR_WITHOUT_OPACITY_PROB,
    SAMPLE_RATE,
    SOUND_KINDS,
    SOUND_PROBS,
    SYMPTOM_PROBS,
    SYMPTOMS,
    ZONE_NAMES,
    _count,
    prior_zone_probs,
    sample_latents,
)
from course_lib.data.clinic_oracle import (
    AXES,
    DOCUMENTED_CEILINGS,
    LATENT_SIZES,
    bayes_ceilings,
    bayes_posterior,
    joint_table,
    latent_indices,
)
from course_lib.data.clinic_records import (
    EXPIRATION,
    INSPIRATION,
    _render_images,
    _render_reports,
    _render_sounds,
)
from course_lib.data.clinic_text import (
    NEGATION_CUES,
    REPORT_VOCABULARY,
    SCOPE_ENDS,
    STOP_WORDS,
    bag_of_words,
    report_tokens,
)

__all__ = [
    "AXES",
    "ArgumentTypeError",
    "CLASS_NAMES",
    "CLASS_PRIOR",
    "CLIP_SAMPLES",
    "COUGH_KINDS",
    "COUGH_PROBS",
    "ClinicData",
    "DEFAULT_SIZES",
    "DOCUMENTED_CEILINGS",
    "EXPIRATION",
    "IMAGE_SIZE",
    "INSPIRATION",
    "LARGE_OPACITY_PROB",
    "LATENT_NAMES",
    "LATENT_SIZES",
    "MODALITY_LATENTS",
    "NEGATION_CUES",
    "OPACITY_ZONE_PROBS",
    "PATIENT_VALUES",
    "POLARITIES",
    "PRIOR_OTHER_ZONE_PROB",
    "PRIOR_SAME_ZONE_PROB",
    "PRIOR_WITHOUT_OPACITY_PROB",
    "REPORT_VOCABULARY",
    "SAMPLE_RATE",
    "SCOPE_ENDS",
    "SOUND_KINDS",
    "SOUND_PROBS",
    "SPLITS",
    "STOP_WORDS",
    "SYMPTOMS",
    "SYMPTOM_PROBS",
    "VALIDATION_FRACTION",
    "ZONE_NAMES",
    "as_indices",
    "bag_of_words",
    "bayes_ceilings",
    "bayes_posterior",
    "check_allocation",
    "check_choice",
    "check_fields",
    "check_flag",
    "check_int",
    "describe",
    "joint_table",
    "latent_indices",
    "load_clinic",
    "prior_zone_probs",
    "report_tokens",
    "sample_latents",
    "validation_rows",
]


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
