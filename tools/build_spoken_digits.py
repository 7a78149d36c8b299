"""Rebuild ``assets/spoken_digits.npz``: the words "zero".."nine" spoken by espeak-ng.

    apt-get install espeak-ng            # Debian/Ubuntu; the stored file used espeak-ng 1.51
    python tools/build_spoken_digits.py  # writes assets/spoken_digits.npz (about 20 s)
    python tools/build_spoken_digits.py --evaluate  # how hard each degradation makes the task

Each clip is one word synthesised by ``espeak-ng -v VOICE -s SPEED -p PITCH -w out.wav WORD``
for every combination of the accents, variants, speeds and pitches below. The 22,050 Hz WAV
is read with Python's ``wave`` module, resampled to 16 kHz mono with
``torchaudio.functional.resample``, trimmed of leading and trailing silence, peak-normalised
to 0.9 and stored as 8-bit mu-law codes (``torchaudio.functional.mu_law_encoding``), all clips
concatenated into one array with their offsets and metadata. espeak-ng is deterministic, so a
rebuild reproduces the stored file (``tests/test_data_digits_av.py`` checks a subset).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import wave
from itertools import product
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course_lib.data.digits_av import (  # noqa: E402
    DIGIT_NAMES,
    SAMPLE_RATE,
    SPOKEN_DIGITS_FILE,
    TEST_ACCENTS,
)

ACCENTS = (  # espeak-ng's English voices (the mbrola ones need extra packages: not used)
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
    "en-gb-scotland", "en-029",
)
VARIANTS = ("m3", "f3")  # a male and a female variant of each accent
SPEEDS_WPM = (140, 200)  # espeak-ng -s, words per minute (default 175)
PITCHES = (35, 65)  # espeak-ng -p, 0..99 (default 50)
PEAK = 0.9  # every clip is scaled so that its largest |sample| is this
SILENCE_THRESHOLD = 0.02  # trimmed: leading/trailing samples quieter than this x the peak
MARGIN_S = 0.01  # silence kept before and after the word


def synthesise(word: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """Run espeak-ng once; returns the int16 samples and their sample rate."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "word.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                   str(path), word]
        subprocess.run(command, check=True, capture_output=True)
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError(f"expected 16-bit mono from espeak-ng, got {wav.getparams()}")
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return samples, rate


def clean_clip(samples: np.ndarray, rate: int) -> torch.Tensor:
    """Resample to 16 kHz, trim silence at both ends, peak-normalise; returns float32 (L,)."""
    waveform = torch.from_numpy(samples.astype(np.float32) / 32768.0)
    waveform = AF.resample(waveform, orig_freq=rate, new_freq=SAMPLE_RATE)
    loud = torch.nonzero(waveform.abs() > SILENCE_THRESHOLD * waveform.abs().max()).flatten()
    margin = int(MARGIN_S * SAMPLE_RATE)
    start = max(int(loud[0]) - margin, 0)
    stop = min(int(loud[-1]) + 1 + margin, waveform.numel())
    waveform = waveform[start:stop]
    return waveform * (PEAK / waveform.abs().max())


def encode_clip(waveform: torch.Tensor) -> np.ndarray:
    """8-bit mu-law codes of a waveform in [-1, 1]."""
    return AF.mu_law_encoding(waveform, quantization_channels=256).numpy().astype(np.uint8)


def clip_specs() -> list[dict]:
    """Every (label, voice, speed, pitch) to synthesise, in the stored order."""
    return [
        {"label": label, "voice": f"{accent}+{variant}", "speed": speed, "pitch": pitch}
        for accent, variant, speed, pitch, label in product(
            ACCENTS, VARIANTS, SPEEDS_WPM, PITCHES, range(len(DIGIT_NAMES)))
    ]


def build_clip(spec: dict) -> np.ndarray:
    """The stored mu-law codes of one clip."""
    samples, rate = synthesise(DIGIT_NAMES[spec["label"]], spec["voice"], spec["speed"],
                               spec["pitch"])
    codes = encode_clip(clean_clip(samples, rate))
    if codes.size > SAMPLE_RATE:
        raise ValueError(f"clip {spec} lasts {codes.size / SAMPLE_RATE:.2f} s, more than 1 s")
    return codes


def build(path: Path) -> None:
    specs = clip_specs()
    clips = [build_clip(spec) for spec in specs]
    lengths = np.array([clip.size for clip in clips], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    version = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True,
                             text=True).stdout.split("Data at")[0].strip()
    np.savez_compressed(
        path,
        codes=np.concatenate(clips),
        offsets=offsets,
        lengths=lengths,
        labels=np.array([s["label"] for s in specs], dtype=np.int8),
        voices=np.array([s["voice"] for s in specs]),
        speeds=np.array([s["speed"] for s in specs], dtype=np.int16),
        pitches=np.array([s["pitch"] for s in specs], dtype=np.int16),
        espeak_version=np.array(version),
    )
    print(f"{len(clips)} clips, {lengths.sum() / SAMPLE_RATE:.1f} s of audio, "
          f"longest {lengths.max() / SAMPLE_RATE:.2f} s, test accents {TEST_ACCENTS}")
    print(f"wrote {path.name}: {path.stat().st_size / 1e6:.2f} MB ({version})")


def baseline_accuracy(modality: str, **degradations) -> float:
    """Test accuracy of the linear baseline on one modality of ``load_digits_av`` (seed 0).

    ``modality`` is "image" (the 64 pixels) or "audio" (flattened log-mel, 64 mel bins x 101
    frames); see :func:`course_lib.baselines.linear_baseline` for the recipe (C chosen on the
    validation split, refitted on fit + validation, scored on the test split: new images,
    held-out accents). ``degradations`` go to ``load_digits_av``; with ``seen_voices=True``
    the validation accuracy at the chosen C is returned instead (new recordings of the
    training voices).
    """
    from course_lib.baselines import linear_baseline

    seen_voices = degradations.pop("seen_voices", False)
    result = linear_baseline(modality, seed=0, **degradations)
    return result.validation_accuracy[result.chosen_c] if seen_voices else result.test_accuracy


AUDIO_SETTINGS = ({}, {"snr_db": 10.0}, {"snr_db": 0.0}, {"snr_db": -5.0}, {"snr_db": -10.0},
                  {"snr_db": -15.0}, {"max_shift_s": 0.3}, {"snr_db": -5.0, "max_shift_s": 0.3})
IMAGE_SETTINGS = tuple({"image_noise": noise} for noise in (0.0, 0.2, 0.4, 0.6, 0.8))


def evaluate() -> None:
    """Print the baseline accuracies of ``assets/README.md`` (``course_lib.baselines``).

    Each row: C chosen on the validation split (candidates ``DEFAULT_C_GRID``), refitted on
    fit + validation, scored on the test split (seed 0), with the 95 % Wilson interval.
    """
    from course_lib.baselines import DEFAULT_C_GRID, linear_baseline

    print(f"C chosen on validation from {DEFAULT_C_GRID}; test accuracy [95 % Wilson]")
    for modality, settings in (("audio", AUDIO_SETTINGS), ("image", IMAGE_SETTINGS)):
        for options in settings:
            result = linear_baseline(modality, seed=0, **options)
            validation = result.validation_accuracy[result.chosen_c]
            print(f"{modality} {options or 'clean'}: test {result.test_estimate()} "
                  f"(C = {result.chosen_c:g}; validation {validation:.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=SPOKEN_DIGITS_FILE)
    parser.add_argument("--evaluate", action="store_true",
                        help="print baseline accuracies under each degradation; build nothing")
    args = parser.parse_args()
    if args.evaluate:
        evaluate()
    else:
        build(args.output)


if __name__ == "__main__":
    main()
