"""Robustness of the widget views (course_lib.widgets), without a browser.

A wrong constructor argument (a kind, a shape, NaN, a value outside the slider's range, a
tokenizer that is not one) is refused by name within a second, before any figure is built;
valid edge inputs (float64, numpy, a channel axis, an odd context length) build a widget that
shows what they asked for. The pure helpers behind the views are compared with hand
computations.
"""

from __future__ import annotations

import base64
import inspect
import io
import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_fusion_tools import tiny_playground
from test_robustness_support import (
    COVERED,
    assert_rejects,
    bad_int,
    covers,
    not_a_number,
    not_a_tensor,
)

from course_lib.architectures import DecoderLM, FlamingoLikeModel, gate_sweep
from course_lib.text import SAMPLE_TEXT, BPETokenizer, token_table
from course_lib.widgets import (
    attention_explorer,
    benchmark_factories,
    budget_calculator,
    fusion_playground,
    gate_explorer,
    mel_explorer,
    patch_explorer,
    temperature_explorer,
    tokenizer_box,
    welcome,
)
from course_lib.widgets.attention_explorer import image_attention_viewer
from course_lib.widgets.mel_explorer import COLOUR_TABLE, log_mel_png
from course_lib.widgets.tokenizer_box import count_text, tokens_html

SMALL_TOKENIZER = BPETokenizer().train([SAMPLE_TEXT], vocab_size=280)
NOT_A_STRING = st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text(max_size=2),
                                                                         max_size=2))
SOME_NOT_A_TENSOR = not_a_tensor().filter(lambda value: value is not None)  # None = default


VIEW_MODULES = (attention_explorer, budget_calculator, fusion_playground, gate_explorer,
                mel_explorer, patch_explorer, temperature_explorer, tokenizer_box, welcome)


def _covers_benchmarks(test):
    """``BENCHMARK`` is an alias (of ``_benchmark`` or of the factory itself), which the API
    walk lists under the alias's name: record the names, since the objects carry others."""
    for module in VIEW_MODULES:
        COVERED.setdefault(f"{module.__name__}.BENCHMARK", []).append(
            f"{test.__module__}.{test.__name__}")
    return test


@_covers_benchmarks
@covers(benchmark_factories)
def test_every_view_module_offers_a_zero_argument_benchmark_factory():
    factories = benchmark_factories()
    assert factories == {module.__name__.rsplit(".", 1)[1]: module.BENCHMARK
                         for module in VIEW_MODULES}
    for factory in factories.values():
        required = [p for p in inspect.signature(factory).parameters.values()
                    if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        assert not required, factory
    for name in ("budget_calculator", "patch_explorer", "tokenizer_box", "welcome"):
        assert factories[name]().children  # the cheap ones build (all: test_widget_*)


# ----------------------------------------------------------------------------- chapter 00
@covers(welcome.tone_explorer, welcome.SpectrumPlot, welcome.SpectrumPlot.set_frequency,
        welcome.SpectrumPlot.png)
@given(st.one_of(not_a_number(), st.floats(-1e6, 99), st.floats(1501, 1e9)))
def test_the_tone_explorer_refuses_frequencies_off_its_slider(frequency):
    assert_rejects(welcome.tone_explorer, "frequency_hz", frequency)
    if not (isinstance(frequency, float) and 0 <= frequency <= 8000):
        assert_rejects(welcome.SpectrumPlot, "frequency_hz", frequency)


@covers(welcome.SpectrumPlot, welcome.SpectrumPlot.set_frequency, welcome.SpectrumPlot.png)
def test_the_spectrum_plot_moves_its_peak_and_refuses_a_bad_frequency():
    plot = welcome.SpectrumPlot(np.float64(440.0))
    plot.set_frequency(1000)
    frequencies, magnitudes = plot.line.get_xdata(), plot.line.get_ydata()
    assert abs(frequencies[int(np.argmax(magnitudes))] - 1000) <= 50  # 20 ms: 50 Hz bins
    assert plot.png()
    assert_rejects(plot.set_frequency, "frequency_hz", float("nan"))
    assert_rejects(plot.set_frequency, "frequency_hz", 9000)  # above half the sample rate


# ----------------------------------------------------------------------------- chapter 02
@covers(tokenizer_box.tokenizer_box, tokenizer_box.default_tokenizer, tokens_html, count_text)
@given(NOT_A_STRING, st.one_of(st.integers(), st.text(max_size=3), st.just({})))
def test_the_tokenizer_box_refuses_bad_texts_tokenizers_and_tables(text, tokenizer):
    assert_rejects(tokenizer_box.tokenizer_box, "text", SMALL_TOKENIZER, text)
    assert_rejects(tokenizer_box.tokenizer_box, "tokenizer", tokenizer)
    assert_rejects(count_text, "text", text, [])
    assert_rejects(tokens_html, "table", [(1.5, "a")] if text is None else [text])
    assert_rejects(tokenizer_box.default_tokenizer, "vocab_size", 3.5)


@covers(tokenizer_box.tokenizer_box, tokens_html, count_text)
@given(st.text(max_size=12))
def test_the_box_counts_tokens_characters_and_bytes(text):
    table = token_table(SMALL_TOKENIZER, text)
    assert count_text(text, table).startswith(f"<b>{len(table)} tokens</b> for {len(text)} "
                                              f"characters ({len(text.encode())} UTF-8 bytes)")
    assert tokens_html(table).count("<small>") == len(table)
    box = tokenizer_box.tokenizer_box(SMALL_TOKENIZER, text)
    assert box.tokens.value == tokens_html(table)


@covers(patch_explorer.patch_explorer)
@given(st.one_of(SOME_NOT_A_TENSOR, st.just(torch.zeros(3, 8, 8)), st.just(torch.zeros(8, 9)),
                 st.just(torch.zeros(8, 8, dtype=torch.long)),
                 st.just(torch.full((8, 8), float("nan")))),
       st.one_of(bad_int(4, 8), st.just(3), st.just(65)))
def test_the_patch_explorer_refuses_bad_images_and_patch_sizes(image, patch_size):
    assert_rejects(patch_explorer.patch_explorer, "image", image)
    assert_rejects(patch_explorer.patch_explorer, "patch_size", torch.zeros(8, 8), patch_size)


@covers(patch_explorer.patch_explorer)
def test_the_patch_explorer_takes_numpy_float64_with_a_channel_axis():
    image = np.random.default_rng(0).random((1, 32, 32))  # float64 numpy, (1, S, S)
    root = patch_explorer.patch_explorer(image, patch_size=np.int64(8))
    assert root.slider.value == 8 and "16 patch tokens" in root.readout.value


@covers(mel_explorer.mel_explorer, log_mel_png)
@given(st.one_of(SOME_NOT_A_TENSOR, st.just(torch.zeros(2, 2000)),
                 st.just(torch.zeros(100)), st.just(torch.full((2000,), float("inf")))),
       bad_int(1000, 384_000), NOT_A_STRING.filter(lambda v: v is not None))
def test_the_mel_explorer_refuses_bad_clips_rates_and_labels(waveform, sample_rate, label):
    assert_rejects(mel_explorer.mel_explorer, "waveform", waveform)
    assert_rejects(mel_explorer.mel_explorer, "sample_rate", torch.zeros(2000), sample_rate)
    assert_rejects(mel_explorer.mel_explorer, "label", torch.zeros(2000), 16000, label)
    assert_rejects(log_mel_png, "log_mel", np.zeros(3), 0.0, 1.0)
    assert_rejects(log_mel_png, "high", np.zeros((2, 2)), 1.0, 1.0)  # an empty colour range


@covers(log_mel_png, mel_explorer.mel_explorer)
def test_the_mel_image_maps_low_to_the_first_colour_and_puts_the_top_band_first():
    log_mel = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)  # bands 0 and 1
    uri = log_mel_png(log_mel, 0.0, 3.0)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert pixels.shape == (2, 2, 3)
    np.testing.assert_array_equal(pixels[1, 0], COLOUR_TABLE[0])  # band 0, value 0 = low
    np.testing.assert_array_equal(pixels[0, 1], COLOUR_TABLE[255])  # band 1 on top, 3 = high
    np.testing.assert_array_equal(pixels[0, 0], COLOUR_TABLE[round(2 / 3 * 255)])
    clip = np.sin(2 * math.pi * 440 * np.arange(4000) / 16000)  # numpy float64
    root = mel_explorer.mel_explorer(clip, 16000, "a tone")
    assert "frames" in root.readout.value


# ----------------------------------------------------------------------------- chapter 03
@covers(attention_explorer.attention_explorer, image_attention_viewer)
@given(st.one_of(SOME_NOT_A_TENSOR, st.just(torch.zeros(3, 3)), st.just(torch.zeros(0, 2)),
                 st.just(torch.tensor([[float("nan"), 0.0]]))))
def test_the_attention_views_refuse_bad_keys_values_and_weights(bad):
    assert_rejects(attention_explorer.attention_explorer, "keys", bad)
    assert_rejects(attention_explorer.attention_explorer, "values", None,
                   bad if isinstance(bad, torch.Tensor) and bad.numel() else torch.zeros(2, 2))
    weights = torch.full((2, 3, 4), 0.25)
    image = torch.rand(8, 8)
    for image_bad in (bad, torch.zeros(2, 8, 8), torch.zeros(8), torch.full((8, 8), math.nan)):
        if isinstance(image_bad, torch.Tensor) and image_bad.dim() == 2 and bool(
                torch.isfinite(image_bad).all()) and image_bad.numel():
            continue  # a valid grey image
        assert_rejects(image_attention_viewer, "image", image_bad, weights, ["a", "b", "c"],
                       (2, 2))
    assert_rejects(image_attention_viewer, "weights", image, bad, ["a", "b", "c"], (2, 2))
    assert_rejects(image_attention_viewer, "token_labels", image, weights, "abc", (2, 2))
    assert_rejects(image_attention_viewer, "token_labels", image, weights, ["a", "b"], (2, 2))
    assert_rejects(image_attention_viewer, "grid", image, weights, ["a", "b", "c"], (3, 3))
    assert_rejects(image_attention_viewer, "num_prefix_tokens", image, weights,
                   ["a", "b", "c"], (2, 2), -1)


@covers(image_attention_viewer, attention_explorer.attention_explorer)
def test_the_image_viewer_shows_the_chosen_tokens_map():
    weights = torch.softmax(torch.randn(2, 3, 5, dtype=torch.float64), dim=-1).numpy()
    root = image_attention_viewer(torch.rand(1, 8, 8), weights, ["a", "b", "c"], (2, 2), 1)
    np.testing.assert_allclose(np.asarray(root.figure.data[1].z), weights[0, 0, 1:].reshape(2, 2))
    explorer = attention_explorer.attention_explorer(np.array([[1.0, 0.0], [0.0, 1.0]]),
                                                     np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert len(explorer.figure.data[2].z[0]) == 2


# ----------------------------------------------------------------------------- chapter 04
@covers(temperature_explorer.temperature_explorer)
@given(st.one_of(SOME_NOT_A_TENSOR, st.just(torch.zeros(2, 3)), st.just(torch.zeros(13, 13)),
                 st.just(torch.full((2, 2), float("nan")))),
       st.one_of(not_a_number(), st.floats(0, 0.005), st.floats(2.0, 1e9)), NOT_A_STRING)
def test_the_temperature_explorer_refuses_bad_matrices_and_taus(similarity, tau, name):
    assert_rejects(temperature_explorer.temperature_explorer, "similarity", similarity)
    assert_rejects(temperature_explorer.temperature_explorer, "temperature", None, tau)
    assert_rejects(temperature_explorer.temperature_explorer, "modality_a", None, 0.1, name)


# ----------------------------------------------------------------------------- chapter 05
@covers(fusion_playground.fusion_playground)
@given(st.sampled_from(["models", "data", "image_noise", "snr_db", "table"]))
def test_the_playground_refuses_bad_models_data_and_levels(name):
    models, data = tiny_playground()
    args = {"models": models, "data": data, "image_noise": None, "snr_db": None,
            "table": None}
    args[name] = {"models": [models["early"]], "data": {"labels": data.labels},
                  "image_noise": 0.25, "snr_db": "loud", "table": {"x": {}}}[name]
    assert_rejects(fusion_playground.fusion_playground, name, **args)


# ----------------------------------------------------------------------------- chapter 06
def _small_sweep():
    torch.manual_seed(0)
    model = FlamingoLikeModel(None, 6, DecoderLM(12, 8, 1, 2, 16), num_latents=2,
                              resampler_depth=1, num_heads=2, media_token_id=11)
    prompts = torch.tensor([[11, 3, 4], [11, 5, 6]])
    return gate_sweep(model, torch.randn(2, 3, 6), prompts, torch.tensor([1, 2]),
                      torch.tensor([1, 2]), ("one", "two"), scales=torch.tensor([0.0, 0.5, 1.0]))


@covers(gate_explorer.gate_explorer, gate_explorer.example_gate_sweep)
@given(not_a_number(), bad_int(0))
def test_the_gate_explorer_refuses_bad_sweeps_scales_and_seeds(scale, seed):
    assert_rejects(gate_explorer.gate_explorer, "scale", None, scale)
    assert_rejects(gate_explorer.gate_explorer, "sweep", {"scales": [0.0, 1.0]})
    assert_rejects(gate_explorer.example_gate_sweep, "seed", seed)


@covers(gate_explorer.gate_explorer)
def test_the_gate_explorer_starts_at_the_nearest_scale():
    root = gate_explorer.gate_explorer(_small_sweep(), scale=np.float32(0.6))
    assert root.slider.value == 0.5 and "alpha scale = 0.50" in root.readout.value


# ----------------------------------------------------------------------------- chapter 07
@covers(budget_calculator.budget_calculator, budget_calculator.default_tokenizer)
@given(bad_int(1, 2**31 - 1), NOT_A_STRING, st.one_of(st.integers(), st.text(max_size=2)))
def test_the_budget_calculator_refuses_bad_arguments(context_length, prompt, tokenizer):
    assert_rejects(budget_calculator.budget_calculator, "context_length", context_length)
    assert_rejects(budget_calculator.budget_calculator, "prompt", 512, prompt)
    assert_rejects(budget_calculator.budget_calculator, "tokenizer", 512, "Hi", tokenizer)
    assert_rejects(budget_calculator.default_tokenizer, "vocab_size", 100)


@covers(budget_calculator.budget_calculator)
@settings(max_examples=6)  # each example builds a calculator (about 0.4 s)
@given(st.sampled_from([1, 37, 1001, 4097, 20_000]), st.sampled_from([int, np.int32]))
def test_the_budget_calculator_honours_its_context_length(context_length, kind):
    root = budget_calculator.budget_calculator(kind(context_length), "What is this?",
                                               SMALL_TOKENIZER)
    report = root.report()
    assert root.context.value == context_length and report.context_length == context_length
    assert report.remaining == max(0, context_length - report.used)
    assert report.over_budget == max(0, report.used - context_length)
    assert f"of {context_length})" in root.readout.value
