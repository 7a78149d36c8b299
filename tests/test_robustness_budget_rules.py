"""Robustness of the models' token rules (budget_processors, budget_api, budget_presets) and of
the cost counts (budget_costs): huge sizes, odd candidates and wrong kinds fail by name, at
once; every rule gives a count or a named error for any size; calculate_budget never raises."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from robustness_wild import WILD, assert_result_or_named_error, wild_calls
from test_robustness_support import assert_rejects, bad_int, covers, not_a_number

from course_lib.budget import calculate_budget
from course_lib.budget_api import (
    ApiAudio,
    ApiImages,
    claude_image_tokens,
    gemini_audio_tokens,
    gemini_image_tokens,
    gpt4o_image_tokens,
)
from course_lib.budget_costs import AttentionCost, attention_cost, image_scaling_costs, mlp_cost
from course_lib.budget_counts import AudioFrontEnd, TokenCount
from course_lib.budget_presets import (
    PRESETS,
    AudioRule,
    FrontEndAudio,
    ImageRule,
    Preset,
    get_preset,
)
from course_lib.budget_processors import (
    FixedResize,
    Idefics3Images,
    LlavaNextImages,
    Qwen2AudioClips,
    Qwen2VLImages,
    ResamplerImages,
    WhisperWindows,
    best_fit_resolution,
    smart_resize,
    whisper_feature_frames,
)

IMAGE_RULES = (FixedResize(336, 576), Qwen2VLImages(), LlavaNextImages(), Idefics3Images(),
               ResamplerImages(), ApiImages("gpt-4o"), ApiImages("claude"), ApiImages("gemini"))
AUDIO_RULES = (Qwen2AudioClips(), WhisperWindows(), ApiAudio(), FrontEndAudio(AudioFrontEnd()))
IMAGE_FUNCTIONS = (gpt4o_image_tokens, claude_image_tokens, gemini_image_tokens, smart_resize)
HUGE = st.sampled_from([2**20 + 1, 10**9, 10**200, 10**400])
BAD_SIDE = st.one_of(st.none(), st.floats(), st.text(max_size=2), st.booleans(),
                     st.integers(-10**6, 0), HUGE, st.just([224]))


# ----------------------------------------------------------------------------- the examples
@covers(smart_resize, *IMAGE_FUNCTIONS)
@given(st.sampled_from(IMAGE_FUNCTIONS), st.sampled_from(["height", "width"]), HUGE)
def test_huge_image_sizes_fail_by_name_instead_of_overflowing(function, argument, side):
    # Before: smart_resize(10**400, 10**400) raised OverflowError inside a float division;
    # gpt4o_image_tokens too; gemini_image_tokens returned a 100-digit count.
    arguments = {"height": 224, "width": 224}
    arguments[argument] = side
    assert_rejects(function, argument, **arguments)


@covers(smart_resize)
@given(st.sampled_from(["factor", "min_pixels", "max_pixels"]), st.data())
def test_smart_resize_checks_its_factor_and_pixel_limits(argument, data):
    bad = data.draw(st.one_of(bad_int(1), st.just(10**9) if argument == "factor"
                              else st.nothing()))
    # Before: max_pixels = 0 raised ZeroDivisionError, min_pixels = None a bare TypeError.
    assert_rejects(smart_resize, argument, 500, 300, **{argument: bad})
    assert_rejects(smart_resize, "min_pixels", 500, 300, min_pixels=10**6, max_pixels=10)


@covers(smart_resize, Qwen2VLImages, Qwen2VLImages.resized, Qwen2VLImages.tokens)
@given(st.integers(1, 8000), st.integers(1, 8000))
def test_smart_resize_gives_multiples_of_28_within_the_pixel_limits(height, width):
    if max(height, width) / min(height, width) > 200:
        assert_rejects(smart_resize, "aspect ratio", height, width)
        return
    new_height, new_width = smart_resize(np.int64(height), width)
    assert new_height % 28 == 0 and new_width % 28 == 0
    assert 3136 <= new_height * new_width <= 12_845_056
    rule = Qwen2VLImages()
    assert rule.resized(height, width) == (new_height, new_width)
    assert rule.tokens(height, width).context == new_height * new_width // 28**2 + 2


ODD_CANDIDATES = st.sampled_from([(), None, "ab", ((336,),), ((336, 672, 1),), ((0, 336),),
                                  ((336.5, 336),), ((-336, 336),), ((10**400, 336),),
                                  (("336", "672"),), ({336, 672},), 336])


@covers(best_fit_resolution)
@given(ODD_CANDIDATES)
def test_best_fit_resolution_refuses_odd_candidates_by_name(candidates):
    # Before: () raised IndexError, ((336,),) "not enough values to unpack", ((0, 336),) won.
    assert_rejects(best_fit_resolution, "candidates", 300, 300, candidates)


def test_best_fit_resolution_refuses_too_many_candidates_at_once():
    assert_rejects(best_fit_resolution, "candidates", 300, 300, ((336, 336),) * 10**7)


@covers(best_fit_resolution)
@given(st.integers(1, 4000), st.integers(1, 4000),
       st.lists(st.tuples(st.integers(1, 2000), st.integers(1, 2000)), min_size=1, max_size=6))
def test_best_fit_resolution_keeps_the_most_pixels_then_wastes_the_least(height, width, canvases):
    best = best_fit_resolution(height, width, [list(c) for c in canvases])

    def kept(canvas):  # the hand rule: scale to fit, count the original pixels shown
        scale = min(canvas[1] / width, canvas[0] / height)
        shown = min(int(width * scale) * int(height * scale), width * height)
        return shown, -(canvas[0] * canvas[1] - shown)

    assert best in canvases and kept(best) == max(kept(c) for c in canvases)


# ----------------------------------------------------------------------------- every rule
@covers(*(type(rule).tokens for rule in IMAGE_RULES), *(type(rule).describe for rule in
                                                       IMAGE_RULES), ImageRule, ImageRule.tokens,
        ImageRule.describe, Idefics3Images.tiles)
@given(st.sampled_from(IMAGE_RULES), st.sampled_from(["height", "width"]), BAD_SIDE)
def test_every_image_rule_refuses_a_bad_size_by_name(rule, argument, side):
    arguments = {"height": 224, "width": 224}
    arguments[argument] = side
    assert_rejects(rule.tokens, argument, **arguments)
    assert_rejects(rule.describe, argument, **arguments)
    assert all(callable(getattr(rule, method)) for method in vars(ImageRule)
               if method in ("tokens", "describe"))


@covers(*(type(rule).tokens for rule in IMAGE_RULES), Idefics3Images.tiles)
@settings(max_examples=40)
@given(st.sampled_from(IMAGE_RULES), st.integers(1, 2**20), st.integers(1, 2**20))
def test_every_image_rule_counts_any_valid_size(rule, height, width):
    try:
        count = rule.tokens(height, width)
    except ValueError as error:  # Qwen2-VL refuses aspect ratios over 200, by name
        assert "aspect ratio" in str(error) and max(height, width) / min(height, width) > 200
        return
    assert isinstance(count, TokenCount) and count.context + count.memory >= 1
    assert isinstance(rule.describe(height, width), str)


@covers(*(type(rule).tokens for rule in AUDIO_RULES), *(type(rule).describe for rule in
                                                       AUDIO_RULES), AudioRule, AudioRule.tokens,
        AudioRule.describe, Qwen2AudioClips.audio_tokens, WhisperWindows.windows,
        gemini_audio_tokens)
@given(st.sampled_from(AUDIO_RULES), st.one_of(not_a_number(), st.floats(-9, -0.01),
                                               st.just(1e300), st.just(10**400)))
def test_every_audio_rule_refuses_a_bad_duration_by_name(rule, seconds):
    # Before: describe(None) raised "'>' not supported", 10**400 an OverflowError.
    assert_rejects(rule.tokens, "seconds", seconds)
    assert_rejects(rule.describe, "seconds", seconds)
    assert_rejects(gemini_audio_tokens, "seconds", seconds)


@covers(Qwen2AudioClips.audio_tokens, WhisperWindows.windows, whisper_feature_frames)
@given(st.floats(0, 120))
def test_audio_rules_follow_their_processors_formulas(seconds):
    samples = round(seconds * 16000)
    frames = math.ceil(min(samples, 480_000) / 160)
    assert Qwen2AudioClips().audio_tokens(seconds) == max(((frames - 1) // 2 - 1) // 2 + 1, 0)
    assert WhisperWindows().windows(seconds) == math.ceil(samples / 480_000)
    assert whisper_feature_frames(samples) == math.ceil(samples / 160)
    assert_rejects(whisper_feature_frames, "num_samples", -1)
    assert_rejects(whisper_feature_frames, "hop_length", 10, 0)


RULE_FIELDS = [
    (FixedResize, {"size": 336, "tokens_per_image": 576}, {"size": 1, "tokens_per_image": 0}),
    (Qwen2VLImages, {}, {"min_pixels": 1, "max_pixels": 1, "patch_size": 1, "merge_size": 1,
                         "delimiters": 0}),
    (LlavaNextImages, {}, {"tile_size": 1, "patch_size": 1}),
    (Idefics3Images, {}, {"longest_edge": 1, "tile_size": 1, "tokens_per_tile": 0,
                          "max_image_size": 1}),
    (ResamplerImages, {}, {"num_latents": 0, "markers": 0}),
    (Qwen2AudioClips, {}, {"delimiters": 0}),
    (WhisperWindows, {}, {"positions_per_window": 0}),
]


@covers(FixedResize, Qwen2VLImages, LlavaNextImages, Idefics3Images, ResamplerImages,
        Qwen2AudioClips, WhisperWindows)
@pytest.mark.parametrize(("rule", "base", "minimums"), RULE_FIELDS,
                         ids=[r[0].__name__ for r in RULE_FIELDS])
@given(data=st.data())
def test_every_rule_checks_its_settings_when_built(rule, base, minimums, data):
    # Before: LlavaNextImages(tile_size=0) and Idefics3Images(tile_size=0) divided by zero.
    field = data.draw(st.sampled_from(sorted(minimums)))
    assert_rejects(lambda **kw: rule(**{**base, **kw}), field,
                   **{field: data.draw(st.one_of(bad_int(minimums[field]),
                                                 st.sampled_from([2**40 + 1, 10**400])))})
    assert rule(**base).tokens  # the defaults are valid


@covers(LlavaNextImages, Qwen2AudioClips, FixedResize, ApiImages, ApiAudio, ApiImages.tokens,
        ApiImages.describe, ApiAudio.tokens, ApiAudio.describe)
def test_rules_check_their_other_settings_when_built():
    assert_rejects(LlavaNextImages, "pinpoints", pinpoints=())
    assert_rejects(LlavaNextImages, "pinpoints", pinpoints=((336, 500),))
    assert_rejects(LlavaNextImages, "patch_size", patch_size=400)
    assert_rejects(Qwen2AudioClips, "max_seconds", max_seconds=float("nan"))
    assert_rejects(Qwen2AudioClips, "max_seconds", max_seconds=0)
    assert_rejects(FixedResize, "how", 336, 576, how=None)
    assert_rejects(ApiImages, "api", "gpt-5")
    assert_rejects(ApiImages, "detail", "gpt-4o", "medium")
    assert ApiImages("gpt-4o").tokens(1024, 1024).context == 765  # the guide's worked example
    assert ApiAudio().tokens(60.0).context == 1920
    assert "32 tokens/s" in ApiAudio().describe(2.0)
    assert_rejects(gpt4o_image_tokens, "detail", 512, 512, None)


# ----------------------------------------------------------------------------- presets
@covers(Preset, Preset.image_tokens, Preset.audio_tokens, get_preset)
@given(st.sampled_from(sorted(PRESETS)), WILD)
def test_presets_give_a_count_or_a_named_error_for_any_input(name, value):
    preset = get_preset(name)
    assert_result_or_named_error(preset.image_tokens, {"height": value}, fixed={"width": 224})
    assert_result_or_named_error(preset.audio_tokens, {"seconds": value})


@covers(Preset, get_preset)
@given(st.sampled_from(["name", "kind", "source", "summary", "image", "audio",
                        "context_length"]), st.data())
def test_presets_check_their_fields_by_name(field, data):
    fields = dataclasses.asdict(PRESETS["micro-omni"]) | {"image": PRESETS["micro-omni"].image,
                                                          "audio": PRESETS["micro-omni"].audio}
    fields[field] = data.draw({"kind": st.sampled_from(["closed", None, "API"]),
                               "image": st.sampled_from([3, "rule", lambda h, w: 1]),
                               "audio": st.sampled_from([3, "rule"]),
                               "context_length": bad_int(1).filter(lambda v: v is not None),
                               }.get(field, st.sampled_from([None, 3, ["x"]])))
    assert_rejects(Preset, field, **fields)
    assert_rejects(get_preset, "preset", data.draw(st.sampled_from(
        [None, ["micro-omni"], "Micro-Omni", "gpt4", 3])))


@covers(FrontEndAudio, FrontEndAudio.tokens, FrontEndAudio.describe)
def test_front_end_audio_needs_a_front_end_and_describes_the_frames():
    assert_rejects(FrontEndAudio, "front_end", None)
    rule = FrontEndAudio(AudioFrontEnd())
    assert rule.tokens(3.0).context == 38  # SYLLABUS G: 3 s -> 301 frames -> 38 tokens
    assert "301 STFT frames" in rule.describe(3.0)


# ----------------------------------------------------------------------------- costs
@covers(attention_cost, mlp_cost, AttentionCost)
@given(st.sampled_from(["sequence_length", "width", "depth", "key_length", "bytes_per_value",
                        "gated", "ffn_width"]), st.data())
def test_cost_counts_check_every_size_by_name(argument, data):
    if argument == "gated":
        assert_rejects(mlp_cost, "gated", 3, 8, 16, 1, gated=data.draw(st.sampled_from(
            ["yes", 1, None])))
        return
    if argument == "ffn_width":
        assert_rejects(mlp_cost, "ffn_width", 3, 8, data.draw(bad_int(1)), 1)
        return
    minimum = {"width": 1, "bytes_per_value": 1}.get(argument, 0)
    bad = data.draw(bad_int(minimum).filter(lambda v: not (argument == "key_length" and v is None)))
    arguments = {"sequence_length": 3, "width": 8, "depth": 1}
    arguments[argument] = bad
    assert_rejects(attention_cost, argument, **arguments)
    assert_rejects(AttentionCost, "score_flops", -1, 0, 0)


@covers(attention_cost, mlp_cost, AttentionCost)
@given(st.integers(0, 10**6), st.integers(1, 10**4), st.integers(0, 100), st.integers(0, 10**6))
def test_cost_counts_are_the_hand_formulas(n, d, depth, m):
    cost = attention_cost(np.int64(n), d, depth, key_length=m)
    assert cost.score_flops == depth * 4 * n * m * d
    assert cost.projection_flops == depth * 2 * d * d * (2 * n + 2 * m)
    assert cost.total_flops == cost.score_flops + cost.projection_flops
    assert mlp_cost(n, d, 3 * d, depth) == depth * 6 * n * d * 3 * d
    assert mlp_cost(n, d, 3 * d, depth, gated=False) == depth * 4 * n * d * 3 * d


@covers(image_scaling_costs)
@given(st.one_of(st.none(), st.just("123"), st.just(np.arange(3)), st.just([1.5]),
                 st.just([-1]), st.just([None]), st.just(list(range(100_001)))))
def test_image_scaling_costs_refuses_what_is_not_a_list_of_counts(num_images):
    assert_rejects(image_scaling_costs, "num_images", num_images)
    costs = image_scaling_costs(range(3))
    assert costs["llava_sequence"] == [50, 626, 1202]  # 50 text + 576 per image


# ----------------------------------------------------------------------------- calculate_budget
@covers(calculate_budget)
@given(st.sampled_from(["audio_seconds", "downsampling", "image_height", "preset",
                        "context_length", "num_images"]),
       st.sampled_from([10**400, 1e308, [1], {}, ("x",), float("nan")]))
def test_calculate_budget_keeps_its_never_raises_contract_with_named_errors(argument, value):
    # The documented contract: the calculator never raises, a bad setting is the report's
    # error. Before: 10**400 s gave "int too large to convert to float" and a list for
    # downsampling "unhashable type: 'list'" (errors that named nothing).
    report = calculate_budget(**{argument: value})
    if report.error is not None:
        assert _names_one_of(report.error, [argument]), report.error


@covers(calculate_budget)
@settings(max_examples=30)
@given(wild_calls(calculate_budget))
def test_calculate_budget_never_raises_for_wild_arguments(arguments):
    report = calculate_budget(**arguments)  # the contract: a report, never an exception
    assert report.error is None or (isinstance(report.error, str) and report.error)


def _names_one_of(error: str, arguments: list[str]) -> bool:
    """The error names one of the arguments, or the word that the calculator's counting
    function calls it (``audio_seconds`` reaches ``audio_tokens`` as ``seconds``)."""
    return any(part in error for argument in arguments for part in argument.split("_")
               if len(part) > 3)
