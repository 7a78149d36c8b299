"""Robustness of course_lib.signals and course_lib.colab: bad arguments refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    assert_rejects,
    bad_int,
    covers,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
    wrong_rank,
)

from course_lib.colab import colab_badge
from course_lib.signals import magnitude_spectrum, tone


@covers(tone)
@given(st.sampled_from(["frequency_hz", "seconds", "sample_rate", "amplitude"]), st.data())
def test_tone_refuses_bad_arguments(argument, data):
    kwargs = {"frequency_hz": 440.0, "seconds": 0.01, "sample_rate": 16000, "amplitude": 1.0}
    bad = {"frequency_hz": st.one_of(not_a_number(), st.floats(-1e9, -1e-3),
                                     st.floats(8000, 1e12)),
           "seconds": st.one_of(not_a_number(), st.floats(-1e9, 0), st.floats(1e4, 1e12)),
           "sample_rate": bad_int(1), "amplitude": not_a_number()}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(tone, argument, **kwargs)


@covers(tone)
@given(st.floats(0, 7999), st.floats(1e-4, 0.05), st.sampled_from([8000, 16000, 44100]),
       st.one_of(st.floats(-2, 2), st.sampled_from([np.float32(0.5), 1])))
def test_tone_is_the_sine_formula(frequency_hz, seconds, sample_rate, amplitude):
    if frequency_hz >= sample_rate / 2:
        return
    wave = tone(frequency_hz, seconds, sample_rate, amplitude)
    assert wave.shape == (round(seconds * sample_rate),)
    for i in range(0, len(wave), max(1, len(wave) // 5)):
        expected = float(amplitude) * math.sin(2 * math.pi * frequency_hz * i / sample_rate)
        assert wave[i].item() == pytest.approx(expected, abs=1e-3 * max(1, abs(amplitude)))


@covers(magnitude_spectrum)
@given(st.one_of(not_a_tensor(), wrong_rank([1]), tensor_of_dtype((8,), NOT_FLOAT),
                 st.just(torch.zeros(1)), st.just(torch.tensor([0.0, float("nan")]))))
def test_magnitude_spectrum_refuses_bad_waveforms(waveform):
    assert_rejects(magnitude_spectrum, "waveform", waveform, 16000)


@covers(magnitude_spectrum)
@given(st.one_of(not_a_number(), st.floats(-1e6, 0)))
def test_magnitude_spectrum_refuses_a_bad_sample_rate(sample_rate):
    assert_rejects(magnitude_spectrum, "sample_rate", torch.zeros(8), sample_rate)


@covers(magnitude_spectrum)
@given(st.sampled_from(["float32", "float64", "numpy", "strided"]), st.integers(2, 64))
def test_magnitude_spectrum_reads_a_full_scale_sine_as_one(kind, length):
    wave64 = torch.sin(2 * math.pi * torch.arange(length, dtype=torch.float64) * 4 / length)
    wave = {"float32": wave64.float(), "float64": wave64, "numpy": wave64.numpy(),
            "strided": torch.stack([wave64, wave64], 1)[:, 0]}[kind]
    frequencies, magnitudes = magnitude_spectrum(wave, length)
    assert frequencies.shape == magnitudes.shape == (length // 2 + 1,)
    if length > 8:
        assert magnitudes[4].item() == pytest.approx(1.0, abs=1e-4)


@covers(colab_badge)
@given(st.one_of(st.none(), st.integers(), st.just(b"notebooks/a.ipynb"),
                 st.sampled_from(["", "notebooks/a.py", "/etc/a.ipynb", "../a.ipynb",
                                  "notebooks\\a.ipynb", "a (1).ipynb", "a b.ipynb"])))
def test_colab_badge_refuses_what_is_not_a_notebook_path(notebook_path):
    assert_rejects(colab_badge, "notebook_path", notebook_path)


@covers(colab_badge)
@given(st.from_regex(r"notebooks/[0-9a-z_]{1,20}\.ipynb", fullmatch=True))
def test_colab_badge_links_to_the_notebook(notebook_path):
    badge = colab_badge(notebook_path)
    assert badge.endswith(f"/blob/main/{notebook_path})")
