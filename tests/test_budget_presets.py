"""Presets, API billing rules, context vs memory in the calculator, and MLP cost."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from course_lib.budget import (
    PRESETS,
    TokenCount,
    calculate_budget,
    claude_image_tokens,
    gemini_audio_tokens,
    gemini_image_tokens,
    get_preset,
    gpt4o_image_tokens,
    image_scaling_costs,
    mlp_cost,
    smart_resize,
)


# ----------------------------------------------------------------------------- API rules
def test_gpt4o_matches_the_vision_guides_worked_examples():
    # OpenAI vision guide, "Calculating costs" (read 2026-12-01):
    assert gpt4o_image_tokens(1024, 1024, "high") == 765  # 768 x 768: 4 tiles -> 85 + 680
    assert gpt4o_image_tokens(4096, 2048, "high") == 1105  # 2048x1024 -> 1536x768: 6 tiles
    assert gpt4o_image_tokens(8192, 4096, "low") == 85  # low detail: any size
    # By hand: 500 x 500 is one tile (85 + 170); 513 x 500 needs two side by side.
    assert gpt4o_image_tokens(500, 500) == 255 and gpt4o_image_tokens(500, 513) == 425


def test_claude_matches_the_vision_guides_table():
    # Anthropic vision guide, "Evaluate image size": 200 x 200 ~54, 1000 x 1000 ~1334,
    # 1092 x 1092 ~1590 tokens (width x height / 750, rounded up).
    assert claude_image_tokens(200, 200) == 54
    assert claude_image_tokens(1000, 1000) == 1334
    assert claude_image_tokens(1092, 1092) == 1590
    # Larger images are scaled down to at most ~1600 tokens (1.2 megapixels), aspect kept.
    assert claude_image_tokens(4000, 4000) <= 1600 and claude_image_tokens(4000, 4000) >= 1590
    assert claude_image_tokens(100, 3000) == math.ceil(52 * 1568 / 750)  # long edge to 1568


def test_gemini_matches_the_token_guide():
    # Gemini API "Understand and count tokens": <= 384 px both sides: 258; larger: 768-px
    # tiles of 258 each; audio: 32 tokens per second (1 minute -> 1920).
    assert gemini_image_tokens(384, 384) == gemini_image_tokens(10, 300) == 258
    assert gemini_image_tokens(400, 600) == 258  # one 768-px tile
    assert gemini_image_tokens(1000, 750) == 2 * 258
    assert gemini_image_tokens(1536, 1536) == 4 * 258
    assert gemini_audio_tokens(60) == 1920 and gemini_audio_tokens(45) == 1440
    assert gemini_audio_tokens(0.5) == 16


def test_api_rules_reject_bad_input():
    with pytest.raises(ValueError, match="detail"):
        gpt4o_image_tokens(100, 100, "medium")
    for rule in (gpt4o_image_tokens, claude_image_tokens, gemini_image_tokens):
        with pytest.raises(ValueError, match="height"):
            rule(0, 100)
        with pytest.raises(ValueError, match="width"):
            rule(100, -1)
    with pytest.raises(ValueError, match="seconds"):
        gemini_audio_tokens(-1)


# ----------------------------------------------------------------------------- presets
def test_every_preset_counts_a_1000_by_750_image_and_45_s_of_audio():
    for name, preset in PRESETS.items():
        if preset.image is not None:
            count = preset.image_tokens(750, 1000)
            assert isinstance(count, TokenCount) and count.context + count.memory > 0, name
            assert preset.image.describe(750, 1000)
        if preset.audio is not None:
            count = preset.audio_tokens(45)
            assert count.context + count.memory > 0, name
            assert preset.audio.describe(45)


def test_presets_reject_bad_input_naming_the_argument():
    with pytest.raises(ValueError, match="seconds"):
        get_preset("qwen2-audio").audio_tokens(-0.5)
    with pytest.raises(ValueError, match="height"):
        get_preset("llava-next").image_tokens(0, 100)
    with pytest.raises(ValueError, match="width"):
        get_preset("idefics3").image_tokens(100, 0)
    with pytest.raises(ValueError, match="takes no images"):
        get_preset("whisper").image_tokens(100, 100)
    with pytest.raises(ValueError, match="takes no audio"):
        get_preset("llava-1.5").audio_tokens(3)
    with pytest.raises(ValueError, match="aspect ratio over 200"):
        get_preset("qwen2-vl").image_tokens(10, 2001)  # the model itself refuses it
    with pytest.raises(ValueError, match="preset"):
        get_preset("gpt-5")


def test_qwen2_vl_resizes_instead_of_refusing():
    assert smart_resize(20, 20) == (56, 56)  # under min_pixels 3136: enlarged to 56 x 56
    assert get_preset("qwen2-vl").image_tokens(20, 20) == TokenCount(2 * 2 + 2)
    height, width = smart_resize(10_000, 10_000)  # over max_pixels: shrunk
    assert height * width <= 12_845_056 and height % 28 == width % 28 == 0
    assert get_preset("qwen2-vl").image_tokens(10_000, 10_000).context == \
        height * width // 784 + 2 <= 16384 + 2


def test_llava_next_peaks_at_2928_tokens():
    llava_next = get_preset("llava-next")
    # A square image on the 672 x 672 canvas: 48 x 48 features + 48 newlines + 576 base.
    assert llava_next.image_tokens(672, 672) == TokenCount(48 * 48 + 48 + 576) == \
        TokenCount(2928)
    assert max(llava_next.image_tokens(h, w).context for h in range(50, 2000, 97)
               for w in range(50, 2000, 89)) <= 2928


def test_idefics3_enlarges_tiny_images_and_counts_wrappers():
    # 10 x 10 px -> longest side 1456 -> 4 x 4 tiles of 364 + 1 global: 17 x 169 tokens, plus
    # 16 x (<fake>, <row_r_col_c>), 4 line breaks and <fake><global-img> ... <fake>.
    assert get_preset("idefics3").image_tokens(10, 10) == TokenCount(17 * 169 + 32 + 4 + 3)


# ----------------------------------------------------------------------------- calculator
def test_whisper_prompt_goes_to_the_decoder_context_and_audio_to_memory():
    report = calculate_budget(preset="whisper", audio_seconds=3, prompt_tokens=9)
    assert report.error is None and report.fits
    assert (report.context_length, report.used, report.remaining) == (448, 9, 439)
    assert report.memory_segments == (("audio memory", 1500),) and report.memory == 1500
    assert "1500 memory positions" in report.message and report.message.startswith("Fits")


def test_flamingo_charges_markers_to_the_context_and_latents_to_memory():
    report = calculate_budget(512, num_images=3, preset="flamingo", prompt_tokens=4)
    assert dict(report.segments)["images"] == 3
    assert report.memory_segments == (("image memory", 3 * 64),)
    assert report.used == 3 + 4 and report.remaining == 512 - 7


def test_calculator_uses_each_presets_rules():
    report = calculate_budget(preset="llava-next", num_images=2, image_height=750,
                              image_width=1000)
    assert dict(report.segments)["images"] == 2 * get_preset("llava-next").image_tokens(
        750, 1000).context
    assert report.context_length == 512  # no documented context: the course's default
    assert calculate_budget(preset="gpt-4o").context_length == 128_000
    report = calculate_budget(preset="qwen2-audio", audio_seconds=45)
    assert dict(report.segments)["audio"] == 752 and "cut at 30 s" in report.details[1]


def test_calculator_reports_bad_preset_input_as_a_message():
    for settings in (dict(preset="nope"), dict(preset="whisper", num_images=1),
                     dict(preset="qwen2-vl", image_height=0),
                     dict(preset="micro-omni", audio_seconds=-1)):
        report = calculate_budget(**settings)
        assert report.error and report.message.startswith("Invalid"), settings
    assert "preset" in calculate_budget(preset="nope").error
    assert "height" in calculate_budget(preset="qwen2-vl", image_height=0).error
    assert "seconds" in calculate_budget(preset="micro-omni", audio_seconds=-1).error


# ----------------------------------------------------------------------------- MLP cost
@pytest.mark.parametrize("positions,width,ffn", [(7, 16, 40), (1, 8, 8), (33, 12, 30)])
def test_mlp_flops_equal_torchs_flop_counter(positions, width, ffn):
    x = torch.randn(1, positions, width)
    gate, up, down = torch.randn(ffn, width), torch.randn(ffn, width), torch.randn(width, ffn)
    with FlopCounterMode(display=False) as swiglu:
        F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)
    with FlopCounterMode(display=False) as plain:
        F.linear(F.gelu(F.linear(x, up)), down)
    assert mlp_cost(positions, width, ffn, depth=1) == swiglu.get_total_flops()
    assert mlp_cost(positions, width, ffn, depth=1, gated=False) == plain.get_total_flops()
    assert mlp_cost(positions, width, ffn, depth=5) == 5 * swiglu.get_total_flops()


def test_at_one_image_llavas_mlps_cost_more_than_its_attention():
    costs = image_scaling_costs([1, 16])
    assert costs["llava_mlp_flops"][0] > costs["llava_attention_flops"][0]
    assert costs["llava_flops"] == [a + m for a, m in zip(costs["llava_attention_flops"],
                                                          costs["llava_mlp_flops"])]
    assert costs["flamingo_flops"][1] < costs["llava_flops"][1]


def test_mlp_cost_rejects_bad_sizes():
    with pytest.raises(ValueError, match="ffn_width"):
        mlp_cost(10, 8, 0, 2)
    with pytest.raises(ValueError, match="sequence_length"):
        mlp_cost(-1, 8, 8, 2)
    with pytest.raises(ValueError, match="dense_ffn_multiplier"):
        image_scaling_costs([1], dense_ffn_multiplier=0)
