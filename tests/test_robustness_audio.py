"""Robustness of course_lib.audio: bad arguments are refused by name, fast; float64, numpy and
non-contiguous waveforms give the float32 answer (or, without weights, keep float64); batch 1
works."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    as_float32,
    assert_close_to_float32,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    not_an_int,
    tensor_of_dtype,
    wrong_rank,
)

from course_lib.audio import (
    AudioEncoder,
    LogMelFrontEnd,
    downsampled_length,
    empty_mel_filters,
    hz_to_mel,
    log_mel_spectrogram,
    mel_explorer_data,
    mel_filterbank,
    mel_to_hz,
    mu_law_decode,
    num_frames,
    sinusoidal_positions,
)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return AudioEncoder(n_mels=6, dim=8, depth=1, num_heads=2).eval()


# ----------------------------------------------------------------------------- mel scale
@covers(hz_to_mel, mel_to_hz)
@given(st.sampled_from([hz_to_mel, mel_to_hz]), st.one_of(
    not_a_number(), st.floats(-1e9, -1e-6), st.just(torch.tensor([1.0, -5.0])),
    st.just(torch.tensor([1.0, float("nan")])), st.just(np.array(["a"])),
    st.just(torch.ones(2, dtype=torch.complex64)), st.just(torch.ones(2, dtype=torch.bool))))
def test_mel_scale_refuses_what_is_not_a_frequency(function, value):
    assert_rejects(function, "hz" if function is hz_to_mel else "mel", value)


@covers(hz_to_mel, mel_to_hz)
@given(st.one_of(st.floats(0, 1e5), st.integers(0, 10**5), st.just(np.float32(440.0)),
                 st.lists(st.floats(0, 1e5), min_size=1, max_size=4).map(np.array),
                 st.lists(st.floats(0, 1e5), min_size=1, max_size=4).map(torch.tensor)))
def test_mel_scale_follows_the_htk_formula_for_any_real_input(hz):
    expected = 2595 * np.log10(1 + np.asarray(hz, dtype=np.float64) / 700)  # by hand
    mel = hz_to_mel(hz)
    assert mel.dtype == torch.float64
    np.testing.assert_allclose(mel.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(mel).numpy(), np.asarray(hz, dtype=np.float64),
                               rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- filterbank
@covers(mel_filterbank)
@given(st.sampled_from(["n_freqs", "n_mels", "sample_rate", "f_min", "f_max", "dtype"]),
       st.data())
def test_mel_filterbank_refuses_bad_arguments(argument, data):
    kwargs = {"n_freqs": 201, "n_mels": 40, "sample_rate": 16000, "f_min": 0.0, "f_max": None,
              "dtype": torch.float32}
    bad = {"n_freqs": st.one_of(bad_int(2, 2**26)), "n_mels": bad_int(1, 2**26),
           "sample_rate": bad_int(1, 1_000_000),
           "f_min": st.one_of(not_a_number().filter(lambda v: v is not None),
                              st.floats(-1e6, -1e-3), st.floats(8000, 1e9)),
           "f_max": st.one_of(not_a_number().filter(lambda v: v is not None),
                              st.floats(8000.5, 1e9), st.floats(-1e6, 0)),
           "dtype": st.sampled_from([torch.int64, torch.bool, "float32", np.float32, None])}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(mel_filterbank, argument, **kwargs)


@covers(mel_filterbank)
def test_mel_filterbank_refuses_an_allocation_beyond_the_limit():
    assert_rejects(mel_filterbank, "n_freqs", 2**20, 2**10, 16000)


@covers(mel_filterbank)
@given(st.integers(2, 600), st.integers(1, 64), st.sampled_from([8000, 16000, 22050]),
       st.sampled_from([torch.float32, torch.float64]))
def test_mel_filterbank_has_triangles_in_zero_one(n_freqs, n_mels, sample_rate, dtype):
    filters = mel_filterbank(n_freqs, n_mels, sample_rate, dtype=dtype)
    assert filters.shape == (n_freqs, n_mels) and filters.dtype == dtype
    assert float(filters.min()) >= 0 and float(filters.max()) <= 1


# ----------------------------------------------------------------------------- mu-law
@covers(mu_law_decode)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((3,), (torch.float32, torch.bool,
                                                         torch.complex64)),
                 st.just(torch.tensor([0, 300])), st.just(torch.tensor([-1, 3]))))
def test_mu_law_decode_refuses_bad_codes(codes):
    assert_rejects(mu_law_decode, "codes", codes)


@covers(mu_law_decode)
@given(st.one_of(bad_int(2), st.integers(2**24 + 1, 10**12)))
def test_mu_law_decode_refuses_bad_channel_counts(channels):
    assert_rejects(mu_law_decode, "quantization_channels", torch.tensor([0, 1]), channels)


@covers(mu_law_decode)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=8), st.booleans())
def test_mu_law_decode_matches_the_g711_formula_on_tensors_and_arrays(codes, as_numpy):
    given_codes = np.array(codes, dtype=np.int64) if as_numpy else torch.tensor(codes)
    y = 2 * np.array(codes, dtype=np.float64) / 255 - 1  # by hand, in float64
    expected = np.sign(y) * ((1 + 255) ** np.abs(y) - 1) / 255
    np.testing.assert_allclose(mu_law_decode(given_codes).numpy(), expected, atol=2e-6)


# ----------------------------------------------------------------------------- frame counts
@covers(num_frames)
@given(st.sampled_from(["num_samples", "n_fft", "hop_length", "center"]), st.data())
def test_num_frames_refuses_bad_arguments(argument, data):
    kwargs = {"num_samples": 16000, "n_fft": 400, "hop_length": 160, "center": True}
    bad = {"num_samples": bad_int(0), "n_fft": bad_int(1, 2**16), "hop_length": bad_int(1),
           "center": st.one_of(st.integers(), st.none(), st.text(max_size=3))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(num_frames, argument, **kwargs)


@covers(num_frames)
@given(st.integers(0, 10**6), st.integers(2, 2048), st.integers(1, 1000))
def test_num_frames_is_the_hand_formula(samples, n_fft, hop):
    assert num_frames(samples, n_fft, hop, True) == 1 + samples // hop
    if samples >= n_fft:
        assert num_frames(samples, n_fft, hop, False) == 1 + (samples - n_fft) // hop


@covers(downsampled_length)
@given(st.sampled_from(["length", "num_downsample_convs"]), st.data())
def test_downsampled_length_refuses_bad_arguments(argument, data):
    kwargs = {"length": 101, "num_downsample_convs": 3}
    kwargs[argument] = data.draw(bad_int(0) if argument == "length" else bad_int(0, 32))
    assert_rejects(downsampled_length, argument, **kwargs)


@covers(downsampled_length)
@given(st.integers(0, 10**9), st.integers(0, 32))
def test_downsampled_length_is_repeated_ceil_of_half(length, convs):
    expected = length
    for _ in range(convs):
        expected = math.ceil(expected / 2)
    assert downsampled_length(length, convs) == expected


@covers(empty_mel_filters)
@given(st.sampled_from(["n_fft", "n_mels", "sample_rate"]), st.data())
def test_empty_mel_filters_refuses_bad_arguments(argument, data):
    kwargs = {"n_fft": 400, "n_mels": 40, "sample_rate": 16000}
    bad = {"n_fft": bad_int(2, 2**16), "n_mels": bad_int(1), "sample_rate": bad_int(1, 10**6)}
    kwargs[argument] = data.draw(st.one_of(bad[argument], st.just([400])))
    assert_rejects(empty_mel_filters, argument, **kwargs)


@covers(empty_mel_filters)
@given(st.integers(16, 1024), st.integers(1, 128))
def test_empty_mel_filters_counts_all_zero_columns(n_fft, n_mels):
    filters = mel_filterbank(n_fft // 2 + 1, n_mels, 16000)
    assert empty_mel_filters(n_fft, n_mels) == int((filters.sum(0) == 0).sum())
    assert empty_mel_filters(np.int64(n_fft), n_mels) == empty_mel_filters(n_fft, n_mels)


# ----------------------------------------------------------------------------- log-mel
@covers(log_mel_spectrogram)
@given(st.one_of(not_a_tensor(), wrong_rank([1, 2, 3, 4, 5]),
                 tensor_of_dtype((2, 1000), NOT_FLOAT), st.just(torch.zeros(2, 150))))
def test_log_mel_refuses_bad_waveforms(waveform):
    assert_rejects(log_mel_spectrogram, "waveform", waveform)


@covers(log_mel_spectrogram)
@given(st.sampled_from(["sample_rate", "n_fft", "hop_length", "n_mels", "center"]), st.data())
def test_log_mel_refuses_bad_settings(argument, data):
    kwargs = {"sample_rate": 16000, "n_fft": 64, "hop_length": 32, "n_mels": 8, "center": True}
    bad = {"sample_rate": bad_int(1, 10**6), "n_fft": bad_int(2, 2**16),
           "hop_length": bad_int(1), "n_mels": bad_int(1),
           "center": st.one_of(st.integers(), st.none(), st.text(max_size=2))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(log_mel_spectrogram, argument, torch.zeros(2, 1000), **kwargs)


@covers(log_mel_spectrogram)
def test_log_mel_refuses_a_spectrogram_beyond_the_memory_limit():
    assert_rejects(log_mel_spectrogram, "waveform", torch.zeros(4, 2**22), n_fft=4096,
                   hop_length=1)


@covers(log_mel_spectrogram)
@given(st.integers(1, 3), float_tensors((3, 800)))
def test_log_mel_accepts_the_dtype_policy_types(batch, waveform):
    waveform = waveform[:batch]
    got = log_mel_spectrogram(waveform, n_fft=64, hop_length=32, n_mels=8)
    expected = log_mel_spectrogram(as_float32(waveform), n_fft=64, hop_length=32, n_mels=8)
    assert got.shape == (batch, 8, 1 + 800 // 32)
    if torch.as_tensor(waveform).dtype == torch.float64:   # no weights: float64 stays float64
        assert got.dtype == torch.float64
        got = got.float()
    audible = expected > expected.amax() - 12
    torch.testing.assert_close(got[audible], expected[audible], rtol=0, atol=1e-3)


# ----------------------------------------------------------------------------- the front-end
@covers(LogMelFrontEnd)
@given(st.sampled_from(["sample_rate", "n_fft", "hop_length", "n_mels", "clip_seconds"]),
       st.data())
def test_front_end_refuses_bad_settings(argument, data):
    kwargs = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 40,
              "clip_seconds": 0.5}
    bad = {"sample_rate": bad_int(1, 10**6), "n_fft": bad_int(2, 2**16),
           "hop_length": bad_int(1), "n_mels": bad_int(1, 2**26),
           "clip_seconds": st.one_of(not_a_number().filter(lambda v: v is not None),
                                     st.floats(-1e9, 0.0125), st.floats(1e4, 1e12))}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(LogMelFrontEnd, argument, **kwargs)


@covers(LogMelFrontEnd)
@given(st.one_of(not_a_tensor(), wrong_rank([1, 2, 3, 4, 5]),
                 tensor_of_dtype((2, 1000), NOT_FLOAT)))
def test_front_end_refuses_bad_waveforms(waveforms):
    assert_rejects(LogMelFrontEnd(n_fft=64, hop_length=32, n_mels=8, clip_seconds=0.05),
                   "waveforms", waveforms)


@covers(LogMelFrontEnd)
@given(st.integers(1, 3), st.sampled_from([300, 800, 1500]), st.data())
def test_front_end_cuts_or_pads_any_layout_to_the_clip(batch, samples, data):
    waveforms = data.draw(float_tensors((3, samples)))[:batch]
    front_end = LogMelFrontEnd(n_fft=64, hop_length=32, n_mels=8, clip_seconds=0.05)  # 800
    got = front_end(waveforms)
    clip = as_float32(waveforms)[:, :800]
    clip = torch.cat([clip, torch.zeros(batch, 800 - clip.shape[1])], dim=1)  # by hand
    expected = log_mel_spectrogram(clip, n_fft=64, hop_length=32, n_mels=8)
    assert got.shape == (batch, 8, front_end.frames()) == (batch, 8, 1 + 800 // 32)
    audible = expected > expected.amax() - 12
    torch.testing.assert_close(got.float()[audible], expected[audible], rtol=0, atol=1e-3)


@covers(LogMelFrontEnd.frames)
@given(st.one_of(bad_int(1), st.just([100])))
def test_front_end_frames_refuses_bad_sample_counts(num_samples):
    assert_rejects(LogMelFrontEnd().frames, "num_samples", num_samples)


@covers(LogMelFrontEnd.frames, LogMelFrontEnd.describe)
@given(st.sampled_from([8000, 16000, 44100]), st.integers(64, 1024), st.integers(16, 512),
       st.integers(1, 128), st.floats(0.1, 30.0))
def test_front_end_frames_and_description_follow_the_settings(rate, n_fft, hop, n_mels, seconds):
    front_end = LogMelFrontEnd(rate, n_fft, hop, n_mels, seconds)
    samples = round(seconds * rate)
    assert front_end.frames() == 1 + samples // hop == front_end.frames(17)
    line = front_end.describe()
    assert line.startswith(f"{rate / 1000:g} kHz, ") and f"{n_mels} mel bins" in line
    assert line.endswith(f"{seconds:g} s clips") and "\n" not in line


# ----------------------------------------------------------------------------- explorer, positions
@covers(mel_explorer_data)
@given(st.one_of(not_a_tensor(), wrong_rank([1]), tensor_of_dtype((1000,), NOT_FLOAT)))
def test_mel_explorer_data_refuses_bad_waveforms(waveform):
    assert_rejects(mel_explorer_data, "waveform", waveform, 16000, 400, 160, 40)


@covers(mel_explorer_data)
@given(st.sampled_from(["n_fft", "hop_length", "n_mels"]), st.data())
def test_mel_explorer_data_refuses_bad_settings(argument, data):
    kwargs = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 40}
    kwargs[argument] = data.draw(bad_int(2, 2**16) if argument == "n_fft" else bad_int(1))
    assert_rejects(mel_explorer_data, argument, torch.zeros(2000), **kwargs)


@covers(mel_explorer_data)
@given(float_tensors((2000,), layouts=("contiguous", "strided", "numpy")))
def test_mel_explorer_data_reads_out_any_layout(waveform):
    data = mel_explorer_data(waveform, 16000, 400, 160, 40)
    assert data["log_mel"].shape == (40, 1 + 2000 // 160) and data["frames"] == 13
    assert (data["window_ms"], data["hop_ms"], data["tokens_after_3_convs"]) == (25.0, 10.0, 2)


@covers(sinusoidal_positions)
@given(st.sampled_from(["length", "dim"]), st.data())
def test_sinusoidal_positions_refuses_bad_sizes(argument, data):
    kwargs = {"length": 10, "dim": 8}
    kwargs[argument] = data.draw(bad_int(0, 16_384) if argument == "length" else bad_int(1))
    assert_rejects(sinusoidal_positions, argument, **kwargs)


@covers(sinusoidal_positions)
@given(st.integers(0, 50), st.integers(1, 33))
def test_sinusoidal_positions_follow_the_transformer_formula(length, dim):
    table = sinusoidal_positions(length, dim)
    assert table.shape == (length, dim)
    for pos in range(min(length, 3)):
        for i in range(dim):
            angle = pos / 10000 ** ((i - i % 2) / dim)  # by hand (Vaswani et al. 2017)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert abs(table[pos, i].item() - expected) < 1e-5


# ----------------------------------------------------------------------------- the encoder
@covers(AudioEncoder)
@given(st.sampled_from(["n_mels", "dim", "depth", "num_heads", "num_downsample_convs",
                        "mlp_ratio"]), st.data())
def test_audio_encoder_refuses_bad_sizes(argument, data):
    kwargs = {"n_mels": 6, "dim": 8, "depth": 1, "num_heads": 2, "num_downsample_convs": 3,
              "mlp_ratio": 2}
    bad = {"n_mels": bad_int(1, 2**26), "dim": st.one_of(not_an_int(), st.integers(-9, 0)),
           "depth": bad_int(1, 1024), "num_heads": bad_int(1, 8),
           "num_downsample_convs": bad_int(1, 32), "mlp_ratio": bad_int(1, 2**22)}
    kwargs[argument] = data.draw(bad[argument])
    assert_rejects(AudioEncoder, argument, **kwargs)


@covers(AudioEncoder.output_length)
@given(st.one_of(not_an_int(), st.integers(-10**9, -1)))
def test_audio_encoder_output_length_refuses_bad_frames(encoder, frames):
    assert_rejects(encoder.output_length, "frames", frames)


@covers(AudioEncoder.forward)
@given(st.one_of(not_a_tensor(), wrong_rank([3]), tensor_of_dtype((1, 6, 10), NOT_FLOAT),
                 st.just(torch.zeros(1, 5, 10)), st.just(torch.zeros(1, 6, 0))))
def test_audio_encoder_refuses_bad_mels(encoder, mel):
    assert_rejects(encoder, "mel", mel)


@covers(AudioEncoder.forward, AudioEncoder.output_length)
@given(st.integers(0, 2), st.sampled_from([1, 7, 20]), st.data())
def test_audio_encoder_accepts_the_dtype_policy_types(encoder, batch, frames, data):
    mel = data.draw(float_tensors((2, 6, frames)))[:batch]
    with torch.no_grad():
        got, expected = encoder(mel), encoder(as_float32(mel))
    assert got.shape == (batch, encoder.output_length(frames), 8)
    assert_close_to_float32(got, expected)
