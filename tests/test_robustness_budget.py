"""Robustness of course_lib.budget and course_lib.budget_counts: the calculator never raises,
huge layer counts and durations fail (or count) at once, every argument is checked by name."""

from __future__ import annotations

import inspect
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from robustness_wild import WILD, assert_result_or_named_error, wild_calls
from test_robustness_support import assert_rejects, bad_int, covers, not_a_number

from course_lib.budget import (
    PRESETS,
    BudgetItem,
    BudgetReport,
    ContextUsage,
    TokenBudget,
    calculate_budget,
)
from course_lib.budget_counts import (
    STRIDE2_CONV,
    AudioFrontEnd,
    ImageFrontEnd,
    TokenCount,
    audio_tokens,
    conv_output_length,
    downsampled_length,
    image_tokens,
    seconds_to_samples,
    stft_num_frames,
)


# ----------------------------------------------------------------------------- the examples
@covers(audio_tokens, downsampled_length)
@given(st.sampled_from([10**6, 10**9, 10**18]))
def test_huge_layer_counts_count_at_once_or_fail_by_name(layers):
    # Before: [conv] * 10**9 was built (8 GB) and looped over.
    assert_result_or_named_error(audio_tokens, {"num_downsample_convs": layers},
                                 fixed={"seconds": 3.0})
    assert audio_tokens(3.0, num_downsample_convs=layers) == 1  # ceil(L / 2) ends at 1
    # The hand formula: each stride-2 convolution maps L to ceil(L / 2); 3 s -> 301 frames.
    assert audio_tokens(3.0, num_downsample_convs=3) == math.ceil(301 / 8) == 38
    assert_rejects(downsampled_length, "layers", 301, [STRIDE2_CONV] * 10_001)


@covers(calculate_budget, BudgetReport)
@given(st.sampled_from(["audio_seconds", "window_seconds", "context_length", "downsampling",
                        "framing", "num_images", "preset", "image_mode", "prompt_tokens",
                        "image_height", "patch_size", "hop_length"]), WILD)
def test_calculate_budget_never_raises(argument, value):
    # Before: 1e308 s raised OverflowError, a list for downsampling raised TypeError.
    report = calculate_budget(**{argument: value})
    assert isinstance(report, BudgetReport)
    assert report.error is None or argument in report.error or report.error


@covers(calculate_budget, BudgetReport)
@settings(max_examples=40)
@given(wild_calls(calculate_budget), st.sampled_from([None, *PRESETS]))
def test_calculate_budget_never_raises_for_any_settings(arguments, preset):
    arguments.setdefault("preset", preset)
    report = calculate_budget(**arguments)
    assert isinstance(report, BudgetReport)
    assert report.context_length >= 0 and report.used >= 0


@covers(calculate_budget)
def test_calculate_budget_reports_huge_durations_as_errors():
    for seconds in (1e308, 10**20, 1e12):
        report = calculate_budget(audio_seconds=seconds)
        assert report.error is not None and "audio_seconds" in report.error or "seconds" in \
            report.error
    assert calculate_budget(audio_seconds=3.0).error is None


def test_the_calculator_widget_starts_at_its_context_length_argument():
    pytest.importorskip("ipywidgets")
    from course_lib.widgets.budget_calculator import budget_calculator, default_tokenizer

    tokenizer = default_tokenizer()
    for context_length in (1024, 300, 100_000):
        widget = budget_calculator(context_length=context_length, tokenizer=tokenizer)
        # Before: the starting preset set its own 512 and the argument was ignored.
        assert widget.context.value == context_length
        assert widget.report().context_length == context_length
    assert_rejects(budget_calculator, "context_length", context_length=0, tokenizer=tokenizer)
    assert_rejects(budget_calculator, "context_length", context_length="512",
                   tokenizer=tokenizer)


# ----------------------------------------------------------------------------- budget
@covers(TokenBudget, TokenBudget.add, TokenBudget.tokens_by_modality, TokenBudget.table,
        BudgetItem, ContextUsage)
@given(st.sampled_from(["context_length", "modality", "tokens"]), st.data())
def test_token_budget_checks_its_arguments(argument, data):
    if argument == "context_length":
        assert_rejects(TokenBudget, "context_length", data.draw(bad_int(1)))
        return
    budget = TokenBudget(100)
    arguments = {"name": "image", "modality": "image", "tokens": 10}
    arguments[argument] = data.draw(bad_int(0) if argument == "tokens"
                                    else st.sampled_from(["video", "", None, 3]))
    assert_rejects(budget.add, argument, **arguments)
    grown = budget.add("img", "image", 60).add("prompt", "text", 50)
    assert grown.used == 110 and grown.over_budget == 10 and not grown.fits
    assert grown.tokens_by_modality()["image"] == 60
    assert "img" in grown.table()
    assert issubclass(TokenBudget, ContextUsage) and BudgetItem("a", "text", 1).tokens == 1


# ----------------------------------------------------------------------------- counts
COUNT_FUNCTIONS = (stft_num_frames, conv_output_length, downsampled_length, seconds_to_samples,
                   audio_tokens, image_tokens, AudioFrontEnd, ImageFrontEnd, TokenCount)


@covers(*COUNT_FUNCTIONS)
@given(st.sampled_from(COUNT_FUNCTIONS), st.data())
def test_counts_give_a_result_or_a_named_error_for_any_arguments(function, data):
    assert_result_or_named_error(function, data.draw(wild_calls(function)))


@covers(stft_num_frames, conv_output_length, seconds_to_samples)
@given(st.integers(1, 10**6), st.integers(1, 9), st.integers(1, 4), st.integers(0, 4))
def test_counts_follow_the_hand_formulas(length, kernel, stride, padding):
    if length + 2 * padding >= kernel:
        assert conv_output_length(length, kernel, stride, padding) == \
            (length + 2 * padding - kernel) // stride + 1
    assert stft_num_frames(length + 400, 400, 160, center=False) == 1 + length // 160
    assert seconds_to_samples(length / 16000) == length
    assert_rejects(seconds_to_samples, "seconds", 1e300)


@covers(TokenCount, TokenCount.times, AudioFrontEnd, AudioFrontEnd.frames, AudioFrontEnd.tokens,
        AudioFrontEnd.tokens_per_second, ImageFrontEnd, ImageFrontEnd.tokens)
@given(st.one_of(not_a_number(), st.floats(-9, -0.01), st.just(1e300)), bad_int(0))
def test_front_end_methods_check_their_arguments(seconds, count):
    front_end = AudioFrontEnd()
    assert_rejects(front_end.tokens, "seconds", seconds)
    assert_rejects(front_end.frames, "num_samples", count)
    assert_rejects(TokenCount(3, 1).times, "count", count)
    assert TokenCount(3, 1).times(4) == TokenCount(12, 4)
    assert front_end.tokens(3.0) == audio_tokens(3.0)
    assert front_end.tokens_per_second() == pytest.approx(audio_tokens(100.0) / 100, rel=0.01)
    image = ImageFrontEnd()
    assert image.tokens() == image_tokens(224, 224, 16) > 0
    assert_rejects(image.tokens, "height", 0, 224)
    assert set(inspect.signature(image.tokens).parameters) == {"height", "width"}
