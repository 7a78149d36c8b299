"""Aligned digits in three modalities: a handwritten image, a spoken word and a caption.

Images are scikit-learn's 1,797 handwritten 8x8 digits. Audio is the words "zero".."nine"
synthesised with espeak-ng in several English accents, speeds and pitches (built by
``tools/build_spoken_digits.py``, shipped in ``assets/spoken_digits.npz``). Each image is
paired with a random clip of the same digit and a caption from a per-class template.

The test split has its own images (a fixed, stratified 25 %) *and* its own voices: the
accents in :data:`TEST_ACCENTS` are never heard in training. For choices (epochs, learning
rate, width) the training data is carved once more: ``"validation"`` holds a fixed, stratified
20 % of the training images and a fixed quarter of the training voices' recordings (for each
voice and digit, one of its four speed/pitch recordings), ``"fit"`` the rest. Fit, validation
and test share no image and no recording; validation uses the training accents, never the
held-out ones. ``"train"`` (= fit + validation, paired afresh) stays for chapters that make no
choices. The clean data is easy: a
logistic regression on flattened log-mel features scores 100 % on voices it has heard and
92 % on the held-out accents, and one on the 64 pixels scores 97 % (``assets/README.md`` has
the table, from ``python tools/build_spoken_digits.py --evaluate``). So the loader offers
seeded degradations: Gaussian noise on the images, white noise at a chosen SNR on the audio
(the audio baseline falls to 79 % at -10 dB and 36 % at -15 dB), and a random time shift.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from course_lib._validation import (
    ArgumentTypeError,
    check_choice,
    check_fields,
    check_number,
    check_tensor,
    describe,
)
from course_lib.audio import mu_law_decode
from course_lib.env import ASSETS_DIR

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # every waveform is 1 s long
SPOKEN_DIGITS_FILE = ASSETS_DIR / "spoken_digits.npz"
TEST_ACCENTS = ("en-gb-scotland", "en-029")  # Scottish and Caribbean English: test only
TEST_FRACTION = 0.25
VALIDATION_FRACTION = 0.20  # of the training images (and a quarter of the training recordings)
SPLIT_SEED = 20_240_601  # fixes which images are train and which are test, whatever `seed` is
SPLITS = ("train", "test", "fit", "validation")
CAPTION_TEMPLATES = (
    "a handwritten {name}",
    "the number {digit}",
    "a picture of the digit {name}",
    "the digit {digit}, written by hand",
    "a scanned {name}",
    "someone wrote a {name}",
)


@dataclass
class DigitsAV:
    """One split of aligned (image, waveform, caption, label) examples.

    Shape:
        images: (N, 1, 8, 8) float32 in [0, 1]
        waveforms: (N, 16000) float32, 1 s at 16 kHz, the word at the start, zero-padded
        labels: (N,) int64 in 0..9; ``captions``, ``voices``: lists of N strings
        image_indices: (N,) int64, rows of ``sklearn.datasets.load_digits()``
        clip_indices: (N,) int64, clips of ``assets/spoken_digits.npz``
        clip_lengths: (N,) int64, samples of speech in each waveform (before any shift)
        shifts: (N,) int64, samples each word was moved to the right (0 without a shift)
    """

    images: torch.Tensor
    waveforms: torch.Tensor
    captions: list[str]
    labels: torch.Tensor
    voices: list[str]
    image_indices: torch.Tensor
    clip_indices: torch.Tensor
    clip_lengths: torch.Tensor
    shifts: torch.Tensor
    split: str
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        check_fields(self, ("images", "waveforms", "labels", "image_indices", "clip_indices",
                             "clip_lengths", "shifts"), ("captions", "voices"))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str, int]:
        """(image (1, 8, 8), waveform (16000,), caption, label) of one example."""
        return (self.images[index], self.waveforms[index], self.captions[index],
                int(self.labels[index]))



@functools.lru_cache(maxsize=1)
def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 sklearn digits as float32 (1797, 8, 8) in [0, 1], and int64 labels (1797,).

    Reads the CSV that scikit-learn bundles (``sklearn/datasets/data/digits.csv.gz``, the same
    data ``sklearn.datasets.load_digits`` returns) without importing scikit-learn, which alone
    takes about a second; falls back to ``load_digits`` if the file has moved.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if path is not None and path.exists():
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        pixels, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:  # pragma: no cover - only if scikit-learn reorganises its bundled data
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels, labels = digits.images, digits.target
    return (pixels / 16.0).astype(np.float32), labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def load_spoken_digits() -> dict[str, np.ndarray]:
    """Every stored clip, decoded: ``waveforms`` float32 (C, 16000) zero-padded, plus metadata.

    Returns arrays ``waveforms``, ``lengths``, ``labels``, ``voices``, ``accents``, ``speeds``,
    ``pitches`` (one row per clip). Cached: decoding happens once per process.
    """
    if not SPOKEN_DIGITS_FILE.exists():
        raise FileNotFoundError(f"{SPOKEN_DIGITS_FILE.name} is missing from assets/: run "
                                "tools/build_spoken_digits.py")
    with np.load(SPOKEN_DIGITS_FILE) as stored:
        data = {key: stored[key] for key in stored.files}
    decoded = mu_law_decode(torch.from_numpy(data["codes"].astype(np.int64)), 256).numpy()
    waveforms = np.zeros((len(data["lengths"]), CLIP_SAMPLES), dtype=np.float32)
    for row, (offset, length) in enumerate(zip(data["offsets"], data["lengths"], strict=True)):
        waveforms[row, :length] = decoded[offset:offset + length]
    voices = data["voices"].astype(str)
    return {
        "waveforms": waveforms,
        "lengths": data["lengths"].astype(np.int64),
        "labels": data["labels"].astype(np.int64),
        "voices": voices,
        "accents": np.array([voice.split("+")[0] for voice in voices]),
        "speeds": data["speeds"].astype(np.int64),
        "pitches": data["pitches"].astype(np.int64),
    }


def _check_split(split: str) -> None:
    check_choice("split", split, SPLITS)  # "val", "Test" or None are not the training split


def split_image_indices(split: str) -> np.ndarray:
    """Rows of sklearn's digits in ``split``: a fixed stratified 75/25 cut, in a fixed order.

    ``"fit"`` and ``"validation"`` cut the training rows once more, stratified 80/20 (fixed,
    whatever the loader's ``seed``); the three of fit, validation and test are disjoint.
    """
    _check_split(split)
    _, labels = load_digit_images()
    rng = np.random.default_rng(SPLIT_SEED)
    chosen = []
    for label in range(len(DIGIT_NAMES)):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(TEST_FRACTION * len(rows))
        chosen.append(rows[:n_test] if split == "test" else rows[n_test:])
    rows = np.random.default_rng(SPLIT_SEED + 1).permutation(np.concatenate(chosen))
    if split in ("train", "test"):
        return rows
    carve = np.random.default_rng(SPLIT_SEED + 2)
    kept = []
    for label in range(len(DIGIT_NAMES)):
        of_label = carve.permutation(rows[labels[rows] == label])
        n_validation = round(VALIDATION_FRACTION * len(of_label))
        kept.append(of_label[:n_validation] if split == "validation" else of_label[n_validation:])
    return np.random.default_rng(SPLIT_SEED + 3).permutation(np.concatenate(kept))


def split_clip_indices(split: str) -> np.ndarray:
    """Clips whose accent belongs to ``split`` (test: :data:`TEST_ACCENTS`; train: the rest).

    ``"validation"`` takes, for every training voice and digit, one of its four recordings
    (a fixed random speed/pitch combination); ``"fit"`` keeps the other three.
    """
    _check_split(split)
    bank = load_spoken_digits()
    in_test = np.isin(bank["accents"], TEST_ACCENTS)
    if split in ("train", "test"):
        return np.flatnonzero(in_test if split == "test" else ~in_test)
    carve = np.random.default_rng(SPLIT_SEED + 4)
    validation = np.zeros(len(in_test), dtype=bool)
    training = np.flatnonzero(~in_test)
    for voice in sorted(set(bank["voices"][training])):
        for label in range(len(DIGIT_NAMES)):
            group = training[(bank["voices"][training] == voice)
                             & (bank["labels"][training] == label)]
            validation[carve.choice(group)] = True
    return np.flatnonzero(validation if split == "validation" else ~in_test & ~validation)


def add_noise_at_snr(waveforms: np.ndarray, lengths: np.ndarray, shifts: np.ndarray,
                     snr_db: float, generator: torch.Generator) -> np.ndarray:
    """Add white Gaussian noise whose power is exactly the speech power / 10**(snr_db/10).

    The speech power of a clip is the mean square of its ``length`` speech samples (starting
    at ``shift``); the noise covers the whole 1 s and is rescaled so that its mean square over
    the 1 s equals the target, so the realised SNR is the requested one.

    Shape:
        waveforms: (N, S); lengths, shifts: (N,); output: (N, S)

    Raises:
        ValueError / TypeError: naming the argument, for shapes that disagree, speech of no
            samples or outside the clip, a non-finite ``snr_db`` or a missing generator.
    """
    dims: dict = {}
    waveforms = check_tensor("waveforms", waveforms, shape=("N", "S"), dims=dims,
                             finite=True).numpy()
    lengths = check_tensor("lengths", lengths, shape=("N",), kind="int", dims=dims).numpy()
    shifts = check_tensor("shifts", shifts, shape=("N",), kind="int", dims=dims).numpy()
    if lengths.size and (lengths.min() < 1 or (shifts + lengths).max() > waveforms.shape[1]
                         or shifts.min() < 0):
        raise ValueError("lengths and shifts must place at least one speech sample of each clip "
                         f"inside its {waveforms.shape[1]} samples")
    snr_db = check_number("snr_db", snr_db)
    if not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator, got {describe(generator)}")
    time = np.arange(waveforms.shape[1])
    in_speech = (time >= shifts[:, None]) & (time < (shifts + lengths)[:, None])
    speech_power = np.einsum("ns,ns->n", waveforms * in_speech, waveforms,
                             dtype=np.float64) / lengths
    noise = torch.randn(waveforms.shape, generator=generator).numpy()  # 4x numpy's speed
    noise_power = np.einsum("ns,ns->n", noise, noise, dtype=np.float64) / waveforms.shape[1]
    scale = np.sqrt(speech_power / 10.0 ** (snr_db / 10.0) / noise_power)
    return waveforms + noise * scale[:, None].astype(np.float32)


def _is_real(value: object) -> bool:
    """A real number (a Python or numpy int or float), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, (bool, np.bool_))


def load_digits_av(split: str, seed: int = 0, image_noise: float = 0.0,
                   snr_db: float | None = None, max_shift_s: float = 0.0) -> DigitsAV:
    """Aligned images, spoken words and captions of the digits 0-9, optionally degraded.

    Args:
        split: ``"train"`` (1,347 images, voices of 6 accents), ``"test"`` (450 images,
            voices of the held-out :data:`TEST_ACCENTS`), or the two parts of train for
            choosing hyperparameters: ``"fit"`` (1,078 images, 360 recordings) and
            ``"validation"`` (269 images, 120 recordings of the training voices).
        seed: picks each image's clip and caption, and draws every degradation.
        image_noise: standard deviation of Gaussian noise added to each pixel (then clipped
            to [0, 1]); 0 for clean images.
        snr_db: if given, white noise is added to each waveform at this signal-to-noise ratio
            in dB, relative to the power of that clip's speech samples (noisy samples may
            exceed [-1, 1]; clean ones never do).
        max_shift_s: each word is moved right by a random whole number of samples in
            [0, max_shift_s * 16000], filling with zeros at the start; whatever passes the
            1 s end is cut off (no wrap-around).

    Shape:
        images: (N, 1, 8, 8); waveforms: (N, 16000); labels: (N,). See :class:`DigitsAV`.

    Raises:
        ValueError: naming the argument, for an unknown split (not in :data:`SPLITS`), a
            negative or non-finite
            image_noise or max_shift_s, max_shift_s of 1 s or more, or a non-finite snr_db.
    """
    _check_split(split)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (_is_real(image_noise) and math.isfinite(image_noise)
            and image_noise >= 0):
        raise ValueError(f"image_noise must be a finite standard deviation >= 0, "
                         f"got {image_noise!r}")
    if snr_db is not None and not (_is_real(snr_db) and math.isfinite(snr_db)):
        raise ValueError(f"snr_db must be a finite number of dB or None, got {snr_db!r}")
    if not (_is_real(max_shift_s) and math.isfinite(max_shift_s)
            and 0 <= max_shift_s < 1):
        raise ValueError(f"max_shift_s must be in [0, 1) seconds, got {max_shift_s!r}")

    all_images, all_labels = load_digit_images()
    bank = load_spoken_digits()
    image_rows = split_image_indices(split)
    labels = all_labels[image_rows]
    # Separate random streams, so that switching a degradation on leaves the pairing alone.
    streams = np.random.SeedSequence(seed).spawn(5)
    pair_rng, caption_rng, image_rng, shift_rng = (np.random.default_rng(s) for s in streams[:4])
    audio_generator = torch.Generator().manual_seed(int(streams[4].generate_state(1)[0]))

    split_clips = split_clip_indices(split)
    clip_rows = np.empty(len(image_rows), dtype=np.int64)
    for label in range(len(DIGIT_NAMES)):
        candidates = split_clips[bank["labels"][split_clips] == label]
        where = np.flatnonzero(labels == label)
        clip_rows[where] = pair_rng.choice(candidates, size=len(where))
    templates = caption_rng.integers(len(CAPTION_TEMPLATES), size=len(image_rows))
    captions = [CAPTION_TEMPLATES[t].format(name=DIGIT_NAMES[y], digit=y)
                for t, y in zip(templates, labels, strict=True)]

    images = all_images[image_rows][:, None]
    if image_noise > 0:
        noise = image_rng.standard_normal(images.shape).astype(np.float32) * image_noise
        images = np.clip(images + noise, 0.0, 1.0)

    waveforms = bank["waveforms"][clip_rows]
    lengths = bank["lengths"][clip_rows]
    max_shift = int(round(max_shift_s * SAMPLE_RATE))
    shifts = shift_rng.integers(0, max_shift + 1, size=len(clip_rows))
    if max_shift > 0:
        shifted = np.zeros_like(waveforms)
        for row, shift in enumerate(shifts):
            shifted[row, shift:] = waveforms[row, :CLIP_SAMPLES - shift]
        waveforms = shifted
    lengths = np.minimum(lengths, CLIP_SAMPLES - shifts)  # speech cut at the 1 s end
    if snr_db is not None:
        waveforms = add_noise_at_snr(waveforms, lengths, shifts, float(snr_db), audio_generator)

    return DigitsAV(
        images=torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        waveforms=torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)),
        captions=captions,
        labels=torch.from_numpy(labels.astype(np.int64)),
        voices=[str(v) for v in bank["voices"][clip_rows]],
        image_indices=torch.from_numpy(image_rows.astype(np.int64)),
        clip_indices=torch.from_numpy(clip_rows),
        clip_lengths=torch.from_numpy(lengths.astype(np.int64)),
        shifts=torch.from_numpy(shifts.astype(np.int64)),
        split=split,
    )


def load_mri_slice(size: int = 224) -> torch.Tensor:
    """A real 256x256 MRI slice of a head (matplotlib's sample ``s1045.ima.gz``), resized.

    Args:
        size: output height and width in pixels (bilinear resize, antialiased).

    Shape:
        output: (1, size, size) float32 in [0, 1] (one grey channel)

    Raises:
        ValueError: if ``size`` is not an integer from 1 to 4096.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= 4096:
        raise ValueError(f"size must be an integer from 1 to 4096 pixels, got {size!r}")
    from matplotlib.cbook import get_sample_data  # ships with matplotlib: no download

    with get_sample_data("s1045.ima.gz") as stored:  # 256x256 big-endian uint16, no header
        raw = np.frombuffer(stored.read(), dtype=">u2").reshape(256, 256)
    image = torch.from_numpy(raw.astype(np.float32) / raw.max())[None, None]
    if size != 256:
        image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
    return image[0].clamp(0.0, 1.0)
