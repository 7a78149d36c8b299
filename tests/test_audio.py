import math
import random
import warnings

import pytest
import torch

from course_lib.audio import (
    AudioEncoder,
    downsampled_length,
    empty_mel_filters,
    hz_to_mel,
    log_mel_spectrogram,
    mel_explorer_data,
    mel_filterbank,
    mel_to_hz,
    num_frames,
)
from course_lib.env import load_torchaudio

# The reference: torchaudio where it loads with this torch (the pinned environment checks in
# tests/test_torchaudio_optional.py that it does there); elsewhere these comparisons skip.
torchaudio, TORCHAUDIO_STATUS = load_torchaudio()
needs_torchaudio = pytest.mark.skipif(torchaudio is None, reason=TORCHAUDIO_STATUS)

FILTERBANK_SETTINGS = [  # (n_freqs, n_mels, sample_rate, f_min, f_max)
    (201, 128, 16000, 0.0, None), (201, 80, 16000, 0.0, None), (257, 40, 16000, 20.0, 7600.0),
    (513, 80, 22050, 0.0, None), (1025, 128, 44100, 0.0, 16000.0), (129, 23, 8000, 100.0, 4000.0),
    (65, 128, 16000, 0.0, None),
]


def _torchaudio_fbanks(n_freqs, n_mels, sample_rate, f_min, f_max):
    f_max = sample_rate / 2 if f_max is None else f_max
    return torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate,
                                                 norm=None, mel_scale="htk")


def _chirp(seconds=1.0, sample_rate=16000):
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return 0.5 * torch.sin(2 * math.pi * (100 + 1500 * t) * t)


@needs_torchaudio
@pytest.mark.parametrize("setting", FILTERBANK_SETTINGS)
def test_mel_filterbank_equals_torchaudio(setting):
    # torchaudio builds its filters in the default dtype; computed in float64 it is exact enough
    # to compare at 1e-5 (its float32 rounding alone moves narrow filters by ~1.5e-5).
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = _torchaudio_fbanks(*setting)
    finally:
        torch.set_default_dtype(previous)
    ours = mel_filterbank(*setting, dtype=torch.float64)
    assert ours.shape == (setting[0], setting[1])
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(mel_filterbank(*setting), reference.float(), rtol=0, atol=1e-5)


@needs_torchaudio
@pytest.mark.parametrize("setting", FILTERBANK_SETTINGS)
def test_mel_filterbank_is_within_float32_rounding_of_default_torchaudio(setting):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = _torchaudio_fbanks(*setting)
    torch.testing.assert_close(mel_filterbank(*setting), reference, rtol=0, atol=3e-5)


def test_htk_mel_scale_by_hand():
    assert float(hz_to_mel(700.0)) == pytest.approx(2595 * math.log10(2))  # 781.17
    assert float(hz_to_mel(0.0)) == 0.0
    hz = torch.tensor([0.0, 440.0, 1000.0, 8000.0])
    torch.testing.assert_close(mel_to_hz(hz_to_mel(hz)), hz.double())


def test_filters_are_triangles_peaking_at_most_one():
    filters = mel_filterbank(513, 40, 16000)
    assert filters.min() >= 0 and filters.max() <= 1
    assert (filters.max(dim=0).values > 0.5).all()  # with 513 bins every filter hits a bin


@needs_torchaudio
def test_empty_filter_count_matches_torchaudio_zero_columns():
    for n_fft, n_mels in [(400, 128), (128, 128), (400, 40), (1024, 128)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = _torchaudio_fbanks(n_fft // 2 + 1, n_mels, 16000, 0.0, None)
        assert empty_mel_filters(n_fft, n_mels) == int((reference.sum(0) == 0).sum())
    assert empty_mel_filters(400, 40) == 0 and empty_mel_filters(400, 128) > 0


@needs_torchaudio
@pytest.mark.parametrize("n_fft, hop, n_mels, center", [
    (400, 160, 128, True), (400, 160, 80, False), (512, 128, 64, True), (256, 100, 40, False)])
def test_log_mel_equals_torchaudio_mel_spectrogram_plus_log(n_fft, hop, n_mels, center):
    waveform = torch.stack([_chirp(), torch.randn(16000) * 0.1])  # (2, 16000)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torchaudio's filters in float64, as ours are built
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transform = torchaudio.transforms.MelSpectrogram(16000, n_fft=n_fft, hop_length=hop,
                                                             n_mels=n_mels, center=center)
    finally:
        torch.set_default_dtype(previous)
    expected = torch.log(transform(waveform.double()).clamp(min=1e-10))
    ours = log_mel_spectrogram(waveform.double(), 16000, n_fft, hop, n_mels, center=center)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-9)
    assert ours.shape == (2, n_mels, num_frames(16000, n_fft, hop, center))
    # In float32 the result is as accurate as float32 allows where the signal is (the top 12
    # nats; far below the peak, the power is FFT rounding noise). torchaudio's own float32
    # transform is off by up to 1.5e-4 there: its filters are computed in float32.
    ours = log_mel_spectrogram(waveform, 16000, n_fft, hop, n_mels, center=center)
    audible = expected > expected.amax(dim=(-2, -1), keepdim=True) - 12
    torch.testing.assert_close(ours[audible], expected.float()[audible], rtol=0, atol=1e-4)


def test_log_mel_keeps_the_waveform_dtype():
    waveform = _chirp()
    single = log_mel_spectrogram(waveform)
    double = log_mel_spectrogram(waveform.double())
    assert double.dtype == torch.float64
    # Far below the peak, float32's FFT rounding noise dominates the power; compare the top
    # 12 nats (about 52 dB), where both precisions measure the same signal.
    audible = double > double.max() - 12
    torch.testing.assert_close(double.float()[audible], single[audible], rtol=0, atol=1e-3)
    assert log_mel_spectrogram(waveform).dtype == torch.float32  # the cache is not stuck


def test_no_call_changes_what_the_next_returns():
    waveform = _chirp()
    first = log_mel_spectrogram(waveform, n_mels=40)
    log_mel_spectrogram(waveform.double(), n_mels=40).zero_()  # another dtype, then mutated
    log_mel_spectrogram(waveform.to("meta"), n_mels=40)  # another device
    again = log_mel_spectrogram(waveform, n_mels=40)
    assert again.dtype == torch.float32
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_log_mel_equals_stft_power_times_our_filterbank():
    waveform = _chirp()
    spectrum = torch.stft(waveform, n_fft=400, hop_length=160, window=torch.hann_window(400),
                          center=True, pad_mode="reflect", return_complex=True)
    power = spectrum.abs() ** 2  # (201, frames)
    mel = mel_filterbank(201, 40, 16000).T @ power  # (40, frames)
    expected = torch.log(mel.clamp(min=1e-10))
    torch.testing.assert_close(log_mel_spectrogram(waveform, n_mels=40), expected,
                               rtol=0, atol=1e-3)


def test_one_second_gives_101_frames_and_13_tokens():
    mel = log_mel_spectrogram(torch.zeros(16000) + 0.01 * _chirp())
    assert mel.shape == (128, 101)
    assert [downsampled_length(101, k) for k in (1, 2, 3)] == [51, 26, 13]
    assert 16000 / 160 / 2**3 == 12.5
    assert num_frames(16000, 400, 160, center=False) == 98  # 1 + (16000 - 400) // 160


def test_frame_formula_matches_the_output_for_many_lengths():
    rng = random.Random(0)
    for length in [401, 1000, 16000, 48000] + rng.sample(range(401, 20000), 10):
        for center in (True, False):
            frames = log_mel_spectrogram(torch.randn(length), n_mels=40, center=center).shape[-1]
            assert frames == num_frames(length, 400, 160, center)


@needs_torchaudio
def test_frame_formula_matches_torchaudio_output_for_many_lengths():
    rng = random.Random(0)
    for length in [401, 1000, 16000, 48000] + rng.sample(range(401, 20000), 10):
        for center in (True, False):
            spectrogram = torchaudio.transforms.Spectrogram(n_fft=400, hop_length=160,
                                                            center=center)
            assert spectrogram(torch.randn(length)).shape[-1] == num_frames(length, 400, 160,
                                                                            center)


def test_empty_filters_emit_no_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_mel_spectrogram(_chirp(), n_fft=400, n_mels=128)
    assert caught == []


def test_audio_shorter_than_one_window_raises():
    with pytest.raises(ValueError, match="waveform has 399 samples, shorter than one window"):
        log_mel_spectrogram(torch.zeros(399), n_fft=400, center=False)
    with pytest.raises(ValueError, match="waveform"):
        log_mel_spectrogram(torch.zeros(200), n_fft=400, center=True)
    with pytest.raises(ValueError, match="num_samples"):
        num_frames(100, 400, 160, center=False)
    with pytest.raises(ValueError, match="waveform"):
        log_mel_spectrogram(torch.zeros(1000, dtype=torch.int16))
    with pytest.raises(ValueError, match="hop_length"):
        log_mel_spectrogram(torch.zeros(1000), hop_length=0)


def test_bad_filterbank_arguments_raise():
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(201, 40, 16000, f_max=9000.0)
    with pytest.raises(ValueError, match="n_mels"):
        mel_filterbank(201, 0, 16000)


def _ceil_halvings(length, times):
    for _ in range(times):
        length = math.ceil(length / 2)
    return length


def test_downsampled_length_is_repeated_ceil_of_half():
    for length in range(1, 501):
        for times in (1, 2, 3, 4):
            assert downsampled_length(length, times) == _ceil_halvings(length, times)


def test_audio_encoder_output_length_equals_ceil_formula():
    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=8, dim=16, depth=1, num_heads=2).eval()
    lengths = [1, 2, 3, 4, 5, 7, 8, 9, 101, 499, 500] + random.Random(0).sample(range(1, 501), 40)
    with torch.no_grad():
        for length in lengths:
            out = encoder(torch.randn(2, 8, length))
            assert out.shape == (2, _ceil_halvings(length, 3), 16), length
            assert encoder.output_length(length) == out.shape[1]


def test_audio_encoder_reference_design_shapes():
    encoder = AudioEncoder(n_mels=128, dim=192, depth=2, num_heads=4)
    mel = log_mel_spectrogram(0.1 * torch.randn(2, 16000))
    assert encoder(mel).shape == (2, 13, 192)
    two_convs = AudioEncoder(n_mels=128, dim=32, depth=1, num_heads=2, num_downsample_convs=2)
    assert two_convs(mel).shape == (2, 26, 32)


def test_audio_encoder_tokens_see_the_whole_clip():
    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=8, dim=16, depth=1, num_heads=2).eval()
    mel = torch.randn(1, 8, 80)
    changed = mel.clone()
    changed[..., -8:] += 1.0  # only the last 8 frames -> only the last token's conv input
    with torch.no_grad():
        assert (encoder(changed)[0, 0] - encoder(mel)[0, 0]).abs().max() > 1e-4


def test_audio_encoder_errors_name_the_argument():
    with pytest.raises(ValueError, match="dim 30 is not divisible by num_heads 4"):
        AudioEncoder(128, 30, 1, 4)
    encoder = AudioEncoder(128, 16, 1, 2)
    with pytest.raises(ValueError, match="mel must have shape"):
        encoder(torch.zeros(1, 80, 101))
    with pytest.raises(ValueError, match="num_downsample_convs"):
        AudioEncoder(128, 16, 1, 2, num_downsample_convs=0)


def test_mel_explorer_data_reads_out_the_numbers():
    data = mel_explorer_data(_chirp(), 16000, n_fft=400, hop_length=160, n_mels=128)
    assert (data["frames"], data["frames_per_second"], data["tokens_after_3_convs"]) == (
        101, 100.0, 13)
    assert (data["window_ms"], data["hop_ms"], data["hz_per_fft_bin"]) == (25.0, 10.0, 40.0)
    assert data["log_mel"].shape == (128, 101)
    assert mel_explorer_data(_chirp(), 16000, 400, 80, 64)["frames"] == 201
