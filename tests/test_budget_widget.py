"""The calculator widget, headless: move controls, read the bar, the message and the readout."""

import pytest

from course_lib.budget import audio_tokens, get_preset, image_tokens
from course_lib.widgets import benchmark_factories
from course_lib.widgets._base import iter_controls
from course_lib.widgets.budget_calculator import (
    CUSTOM,
    budget_calculator,
    default_tokenizer,
)


@pytest.fixture(scope="module")
def tokenizer():
    return default_tokenizer()


@pytest.fixture
def calculator(tokenizer):
    return budget_calculator(tokenizer=tokenizer)


def bar(widget):
    return {trace.name: trace.x[0] for trace in widget.figure.data}


def test_starts_on_the_micro_omni_design(calculator, tokenizer):
    prompt = len(tokenizer.encode("What is this?"))
    assert calculator.preset.value == "micro-omni"
    assert bar(calculator) == {"images": 1, "audio": 38, "prompt": prompt,
                               "left for generation": 512 - 1 - 38 - prompt,
                               "image memory": 0, "audio memory": 0}
    assert f"Tokens left for generation: {512 - 39 - prompt}" in calculator.readout.value
    assert "301 STFT frames -&gt; 38 tokens" in calculator.readout.value


def test_sliders_change_the_bar(calculator):
    calculator.seconds.value = 10.0
    assert bar(calculator)["audio"] == 126 == audio_tokens(10)
    calculator.hop.value = 256
    calculator.seconds.value = 3.0
    assert bar(calculator)["audio"] == 24
    calculator.images.value = 3
    calculator.image_mode.value = "patches"
    assert bar(calculator)["images"] == 3 * 196
    calculator.image_mode.value = "resampler"
    calculator.latents.value = 64
    calculator.extra.value = 2
    assert bar(calculator)["images"] == 3 * 66
    assert calculator.preset.value == CUSTOM  # moving a control leaves the preset


def test_prompt_is_tokenised_live(calculator, tokenizer):
    calculator.prompt.value = "Describe the patient and the cough."
    assert bar(calculator)["prompt"] == len(tokenizer.encode(calculator.prompt.value))
    calculator.prompt.value = ""
    assert bar(calculator)["prompt"] == 0


def test_over_budget_is_a_warning_not_a_traceback(calculator):
    calculator.images.value = 2
    calculator.image_mode.value = "patches"
    calculator.height.value = calculator.width.value = 336
    calculator.patch.value = 14
    report = calculator.report()
    assert report.over_budget == 2 * 576 + report.segments[1][1] + report.segments[2][1] - 512
    assert "Over budget" in calculator.message.value and "#fde2e2" in calculator.message.value
    assert bar(calculator)["left for generation"] == 0
    band = [s for s in calculator.figure.layout.shapes if s.type == "rect"]
    assert len(band) == 1 and band[0].x0 == 512 and band[0].x1 == report.used


def test_invalid_combination_shows_a_message(calculator):
    calculator.image_mode.value = "patches"  # custom: a bare ViT needs whole patches
    calculator.height.value = 238  # 17 x 14: 16-pixel patches do not fit
    assert "Invalid settings" in calculator.message.value
    assert "height 238 is not divisible by patch_size 16" in calculator.message.value
    assert sum(bar(calculator)[k] for k in ("images", "audio", "prompt")) == 0
    calculator.patch.value = 14
    assert "Fits" in calculator.message.value
    calculator.hop.value = 400
    calculator.framing.value = "no-padding"
    calculator.seconds.value = 0.0
    assert "Fits" in calculator.message.value  # no audio, no frames needed


def test_presets_set_the_controls_and_the_numbers(calculator):
    calculator.preset.value = "llava-1.5"
    assert calculator.context.value == 2048 and bar(calculator)["images"] == 576
    assert bar(calculator)["audio"] == 0
    calculator.height.value, calculator.width.value = 750, 1000  # resized to 336: still 576
    assert bar(calculator)["images"] == 576 and calculator.preset.value == "llava-1.5"
    calculator.preset.value = "whisper"  # decoder context 448; 1500 encoder positions
    assert calculator.context.value == 448 and bar(calculator)["audio"] == 0
    assert bar(calculator)["audio memory"] == 1500 and bar(calculator)["images"] == 0
    assert calculator.report().fits
    calculator.preset.value = "qwen2-vl"
    calculator.images.value = 1
    calculator.height.value = calculator.width.value = 224
    assert bar(calculator)["images"] == image_tokens(224, 224, 28, "patches") + 2 == 66
    calculator.height.value = 225  # not a multiple of 28: resized, not refused
    assert bar(calculator)["images"] == 66 and "Fits" in calculator.message.value
    calculator.preset.value = "flamingo"
    calculator.images.value = 3
    assert bar(calculator)["images"] == 3 and bar(calculator)["image memory"] == 3 * 64
    assert "Flamingo" in calculator.readout.value  # the preset's source is shown
    calculator.preset.value = "llava-next"
    calculator.height.value, calculator.width.value = 750, 1000
    assert bar(calculator)["images"] == 3 * get_preset("llava-next").image_tokens(
        750, 1000).context
    calculator.preset.value = "micro-omni"
    assert calculator.context.value == 512 and bar(calculator)["images"] == 3


def test_qwen2_audio_preset_gives_25_tokens_per_second(calculator):
    calculator.preset.value = "qwen2-audio"
    calculator.seconds.value = 10.0
    assert bar(calculator)["audio"] == 250 + 2  # + <|audio_bos|> and <|audio_eos|>
    calculator.seconds.value = 45.0
    assert bar(calculator)["audio"] == 750 + 2  # cut at 30 s


def test_a_long_context_preset_extends_the_context_slider(calculator):
    calculator.preset.value = "gemini"
    assert calculator.context.value == calculator.context.max == 1_048_576
    calculator.preset.value = "micro-omni"
    assert (calculator.context.value, calculator.context.max) == (512, 8192)


def test_moving_a_recipe_control_leaves_the_preset(calculator):
    calculator.preset.value = "llava-1.5"
    calculator.images.value = 2  # an input: the preset stays
    assert calculator.preset.value == "llava-1.5"
    calculator.latents.value = 32  # a recipe control: custom
    assert calculator.preset.value == CUSTOM


def test_every_control_survives_every_benchmark_value(calculator):
    for control in iter_controls(calculator):
        options = getattr(control, "options", None)
        values = list(options) if options else [getattr(control, "min", None),
                                                 getattr(control, "max", None)]
        for value in values:
            if value is None:
                continue
            control.value = value[1] if isinstance(value, tuple) else value
            assert calculator.report() is not None
    assert "budget_calculator" in benchmark_factories()
