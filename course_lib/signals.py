"""Synthetic signals for small demonstrations: a pure tone and its magnitude spectrum.

Chapter 00 uses them to check that sliders, plotly and matplotlib all work in your setup.
"""

from __future__ import annotations

import math

import torch

from course_lib._validation import (
    MAX_ELEMENTS,
    check_allocation,
    check_int,
    check_number,
    check_tensor,
)


def tone(frequency_hz: float, seconds: float = 0.02, sample_rate: int = 16000,
         amplitude: float = 1.0) -> torch.Tensor:
    """A sine wave ``amplitude * sin(2 pi f t)``.

    Shape:
        returns (S,) with S = round(seconds * sample_rate) samples.

    Raises:
        ValueError: if ``frequency_hz`` is negative or at/above the Nyquist frequency
            (sample_rate / 2), ``seconds`` / ``sample_rate`` are not positive, the tone would
            have more than ``MAX_ELEMENTS`` samples, or ``amplitude`` is not finite.
    """
    sample_rate = check_int("sample_rate", sample_rate, minimum=1)
    frequency_hz = check_number("frequency_hz", frequency_hz)
    seconds = check_number("seconds", seconds)
    amplitude = check_number("amplitude", amplitude)
    if not 0 <= frequency_hz < sample_rate / 2:
        raise ValueError(
            f"frequency_hz must be in [0, {sample_rate / 2:g}) (below Nyquist for sample_rate "
            f"{sample_rate}), got {frequency_hz}"
        )
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    check_allocation("seconds * sample_rate", round(seconds * sample_rate), MAX_ELEMENTS,
                     "samples")
    times = torch.arange(round(seconds * sample_rate)) / sample_rate
    return amplitude * torch.sin(2 * math.pi * frequency_hz * times)


def magnitude_spectrum(
    waveform: torch.Tensor, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies (Hz) and the magnitude of the real FFT of a 1-D waveform, scaled so that a
    full-scale sine reads about 1.0 at its frequency.

    Shape:
        waveform: (S,) -> frequencies (S // 2 + 1,), magnitudes (S // 2 + 1,)
    """
    waveform = check_tensor("waveform", waveform, kind="float", finite=True)
    sample_rate = check_number("sample_rate", sample_rate, above=0)
    if waveform.ndim != 1 or waveform.numel() < 2:
        raise ValueError(
            f"waveform must be 1-D with at least 2 samples, got shape {tuple(waveform.shape)}"
        )
    magnitudes = torch.fft.rfft(waveform).abs() * 2 / waveform.numel()
    frequencies = torch.fft.rfftfreq(waveform.numel(), d=1 / sample_rate)
    return frequencies, magnitudes
