"""The clinic's records, rendered from the hidden findings: films, reports and breath sounds.

SYNTHETIC TEACHING DATA, NOT MEDICAL ADVICE. Each renderer takes the latents of
:func:`course_lib.data.clinic_model.sample_latents` and a random generator of its own (so that
the films do not move when the sounds change) and returns one record per patient;
:func:`course_lib.data.clinic.load_clinic` calls them.
"""

from __future__ import annotations

import numpy as np

from course_lib.data.clinic_model import CLIP_SAMPLES, IMAGE_SIZE, SAMPLE_RATE, SYMPTOMS, ZONE_NAMES


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
