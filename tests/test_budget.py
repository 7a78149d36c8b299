"""course_lib.budget: every count checked against the real torch operation or a hand formula."""

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib import budget
from course_lib.budget import (
    PRESETS,
    AudioFrontEnd,
    TokenBudget,
    TokenCount,
    attention_cost,
    audio_tokens,
    calculate_budget,
    conv_output_length,
    get_preset,
    image_scaling_costs,
    image_tokens,
    stft_num_frames,
)


def torch_stft_frames(num_samples, n_fft, hop_length, center):
    signal = torch.randn(num_samples)
    spectrum = torch.stft(signal, n_fft, hop_length, window=torch.hann_window(n_fft),
                          center=center, return_complex=True)
    return spectrum.shape[-1]


def torch_conv_length(length, kernel_size, stride, padding):
    conv = nn.Conv1d(1, 1, kernel_size, stride=stride, padding=padding)
    with torch.no_grad():
        return conv(torch.zeros(1, 1, length)).shape[-1]


def torch_pipeline_tokens(seconds, hop_length=160, n_fft=400, convs=3):
    """Samples -> torch.stft -> real stride-2 Conv1d layers: the length that comes out."""
    signal = torch.randn(round(seconds * 16000))
    frames = torch.stft(signal, n_fft, hop_length, window=torch.hann_window(n_fft),
                        return_complex=True).abs()[None, :2]  # (1, 2 of the freqs, frames)
    layers = [nn.Conv1d(2, 2, 3, stride=2, padding=1)
              for i in range(convs)]
    with torch.no_grad():
        return nn.Sequential(*layers)(frames).shape[-1] if layers else frames.shape[-1]


# ----------------------------------------------------------------------------- frames, convs
def test_stft_num_frames_equals_torch_stft_for_random_sizes():
    rng = random.Random(0)
    for _ in range(300):
        hop_length = rng.randint(1, 64)
        n_fft = rng.randint(hop_length, 128)
        center = rng.random() < 0.5
        minimum = n_fft // 2 + 1 if center else n_fft
        num_samples = rng.randint(minimum, 2000)
        assert stft_num_frames(num_samples, n_fft, hop_length, center) == torch_stft_frames(
            num_samples, n_fft, hop_length, center), (num_samples, n_fft, hop_length, center)


def test_stft_num_frames_refuses_the_signals_torch_stft_refuses():
    for num_samples, center in ((200, True), (399, False)):
        with pytest.raises(RuntimeError):
            torch_stft_frames(num_samples, 400, 160, center)
        with pytest.raises(ValueError, match="num_samples"):
            stft_num_frames(num_samples, 400, 160, center)
    assert stft_num_frames(201) == torch_stft_frames(201, 400, 160, True) == 2


def test_centre_padding_adds_the_frame_at_the_last_sample():
    # 3 s: frames start at 0, 160, ..., 48000: 301 of them; unpadded, windows must fit: 298.
    assert stft_num_frames(48_000) == 1 + 48_000 // 160 == 301
    assert stft_num_frames(48_000, center=False) == 1 + (48_000 - 400) // 160 == 298


def test_conv_output_length_equals_conv1d_for_random_sizes():
    rng = random.Random(1)
    for _ in range(300):
        kernel_size, stride, padding = rng.randint(1, 7), rng.randint(1, 4), rng.randint(0, 3)
        length = rng.randint(max(1, kernel_size - 2 * padding), 500)
        assert conv_output_length(length, kernel_size, stride, padding) == torch_conv_length(
            length, kernel_size, stride, padding), (length, kernel_size, stride, padding)


def test_stride2_conv_is_ceil_half():
    for length in range(1, 400):
        assert conv_output_length(length) == math.ceil(length / 2)


def test_pool_layer_length_equals_avgpool1d():
    for length in range(2, 300):
        pooled = F.avg_pool1d(torch.zeros(1, 1, length), kernel_size=2, stride=2).shape[-1]
        assert conv_output_length(length, 2, 2, 0) == pooled


# ----------------------------------------------------------------------------- audio tokens
def test_audio_tokens_equal_stft_plus_conv1d_pipeline_for_many_durations():
    rng = random.Random(2)
    durations = [0.05, 0.5, 1.0, 2.37, 3.0, 5.0, 7.77, 10.0] + [rng.uniform(0.1, 12)
                                                                 for _ in range(8)]
    for seconds in durations:
        for hop_length in (160, 256):
            assert audio_tokens(seconds, hop_length=hop_length) == torch_pipeline_tokens(
                seconds, hop_length), (seconds, hop_length)
    for convs in (0, 1, 2, 4):
        assert audio_tokens(3.3, num_downsample_convs=convs) == torch_pipeline_tokens(
            3.3, convs=convs)


def test_syllabus_audio_numbers_with_hop_160():
    assert stft_num_frames(3 * 16_000) == 301 and audio_tokens(3) == 38  # 301 -> 151 -> 76 -> 38
    assert stft_num_frames(10 * 16_000) == 1001 and audio_tokens(10) == 126  # nominal 125
    assert stft_num_frames(30 * 16_000) == 3001 and audio_tokens(30) == 376  # nominal 375
    assert audio_tokens(60) == 751  # nominal 12.5 * 60 = 750
    assert AudioFrontEnd().tokens_per_second() == 100 / 8 == 12.5
    assert audio_tokens(0) == 0


def test_hop_256_gives_the_reference_texts_other_numbers():
    # 48000 / 256 = 187.5 frame steps: 188 centred frames -> 94 -> 47 -> 24 tokens.
    assert stft_num_frames(48_000, hop_length=256) == 1 + 187 == 188
    assert audio_tokens(3, hop_length=256) == 24
    # 80000 / 256 = 312.5: 313 frames -> 157 -> 79 -> 40.
    assert stft_num_frames(80_000, hop_length=256) == 313
    assert audio_tokens(5, hop_length=256) == 40
    assert AudioFrontEnd(hop_length=256).tokens_per_second() == 16000 / 256 / 8 == 7.8125


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), "3"])
def test_audio_tokens_rejects_bad_seconds(seconds):
    with pytest.raises(ValueError, match="seconds"):
        audio_tokens(seconds)


@pytest.mark.parametrize("hop_length", [0, -160, 1.5])
def test_audio_tokens_rejects_bad_hop(hop_length):
    with pytest.raises(ValueError, match="hop_length"):
        audio_tokens(3, hop_length=hop_length)


def test_n_fft_smaller_than_hop_is_refused_even_for_silence():
    for seconds in (0, 3):
        with pytest.raises(ValueError, match="n_fft 128 is smaller than hop_length 160"):
            audio_tokens(seconds, n_fft=128)
    with pytest.raises(ValueError, match="n_fft"):
        stft_num_frames(1000, n_fft=100, hop_length=160)


def test_other_bad_audio_arguments_name_themselves():
    with pytest.raises(ValueError, match="num_downsample_convs"):
        audio_tokens(3, num_downsample_convs=-1)
    with pytest.raises(ValueError, match="sample_rate"):
        audio_tokens(3, sample_rate=0)
    with pytest.raises(ValueError, match="num_samples"):
        audio_tokens(0.01)  # 160 samples: too short for reflect padding of 200
    with pytest.raises(ValueError, match="length"):
        conv_output_length(0)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_output_length(1, kernel_size=5, padding=1)
    with pytest.raises(ValueError, match="stride"):
        conv_output_length(10, stride=0)
    with pytest.raises(ValueError, match="framing"):
        AudioFrontEnd(framing="middle").tokens(3)
    with pytest.raises(ValueError, match="window_seconds"):
        AudioFrontEnd(window_seconds=0.0).tokens(3)
    assert calculate_budget(audio_seconds=3, window_seconds=0.0).error is not None


# ----------------------------------------------------------------------------- images
def test_image_tokens_equal_the_patch_grid_of_a_strided_conv():
    for height, width, patch in ((224, 224, 16), (336, 336, 14), (64, 96, 8), (28, 56, 28)):
        conv = nn.Conv2d(1, 1, patch, stride=patch)
        with torch.no_grad():
            grid = conv(torch.zeros(1, 1, height, width)).flatten(2).shape[-1]
        assert image_tokens(height, width, patch, "patches") == grid
        assert image_tokens(height, width, patch, "patches+cls") == grid + 1
        assert image_tokens(height, width, patch, "cls") == 1
        assert image_tokens(height, width, patch, "resampler", num_latents=64) == 64


def test_image_token_syllabus_numbers():
    assert image_tokens(224, 224, 16, "patches") == 196
    assert image_tokens(224, 224, 16, "patches+cls") == 197
    assert image_tokens(336, 336, 14, "patches") == 24 * 24 == 576
    assert image_tokens(1024, 1024, 16, "cls") == 1  # one token whatever the resolution


def test_image_tokens_reject_bad_inputs():
    with pytest.raises(ValueError, match="height 225 is not divisible by patch_size 16"):
        image_tokens(225, 224, 16, "patches")
    with pytest.raises(ValueError, match="width 100 is not divisible by patch_size 16"):
        image_tokens(224, 100, 16, "cls")
    with pytest.raises(ValueError, match="mode"):
        image_tokens(mode="pixels")
    with pytest.raises(ValueError, match="patch_size"):
        image_tokens(224, 224, 0)
    with pytest.raises(ValueError, match="num_latents"):
        image_tokens(mode="resampler", num_latents=0)


# ----------------------------------------------------------------------------- presets
def test_every_preset_names_its_source():
    assert {"micro-omni", "llava-1.5", "llava-next", "whisper", "qwen2-audio", "flamingo",
            "qwen2-vl", "idefics3", "gpt-4o", "claude", "gemini"} <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.name == name and len(preset.source) > 40
        assert preset.image is not None or preset.audio is not None
        assert preset.kind in budget.KINDS


def test_micro_omni_preset():
    preset = get_preset("micro-omni")
    assert preset.context_length == 512
    assert preset.image_tokens(224, 224) == preset.image_tokens(1000, 750) == TokenCount(1, 0)
    front_end = preset.audio.front_end
    assert front_end.n_mels == 128 and front_end.hop_length == 160
    assert [preset.audio_tokens(s).context for s in (3, 10, 30)] == [38, 126, 376]
    assert [audio_tokens(s) for s in (3, 10, 30)] == [38, 126, 376]


def test_llava_flamingo_and_qwen2_vl_image_presets():
    llava = get_preset("llava-1.5")
    for height, width in ((336, 336), (224, 224), (1000, 750), (17, 4000)):
        assert llava.image_tokens(height, width) == TokenCount(24 * 24)  # resized to 336
    flamingo = get_preset("flamingo")
    assert flamingo.image_tokens(224, 224) == flamingo.image_tokens(448, 448) == \
        TokenCount(context=1, memory=64)  # one <image> marker; 64 cross-attended latents
    qwen2_vl = get_preset("qwen2-vl")
    assert qwen2_vl.image_tokens(224, 224).context == (224 // 28) ** 2 + 2 == 66  # paper: 66
    assert qwen2_vl.image_tokens(448, 896).context == 448 * 896 // (28 * 28) + 2
    # 210 = 7.5 x 28: the processor rounds it (Python's round: to 8), it does not refuse it.
    assert qwen2_vl.image_tokens(224, 210).context == 66


def test_whisper_preset_equals_its_padded_stft_and_convs():
    # Whisper pads every clip to 30 s, drops the last STFT frame, then conv (s1) + conv (s2).
    signal = torch.randn(30 * 16000)
    frames = torch.stft(signal, 400, 160, window=torch.hann_window(400),
                        return_complex=True)[..., :-1].abs()[None]
    assert frames.shape[-1] == 3000
    convs = nn.Sequential(nn.Conv1d(201, 4, 3, padding=1), nn.Conv1d(4, 4, 3, 2, padding=1))
    with torch.no_grad():
        positions = convs(frames).shape[-1]
    whisper = get_preset("whisper")
    assert TokenCount(memory=positions) == whisper.audio_tokens(30) == whisper.audio_tokens(3)
    assert whisper.audio_tokens(45) == TokenCount(memory=2 * 1500)  # two 30 s windows
    assert whisper.context_length == 448  # the decoder's own text positions


def test_qwen2_audio_preset_equals_its_published_length_formula():
    qwen = get_preset("qwen2-audio")
    for seconds in (1, 3, 10, 17.3, 17.3333, 30, 45, 0.0125):
        samples = min(round(seconds * 16000), 30 * 16000)  # the processor cuts at 30 s
        mel_frames = math.ceil(samples / 160)  # frames kept by the feature attention mask
        after_conv = (mel_frames - 1) // 2 + 1
        expected = (after_conv - 2) // 2 + 1 + 2  # + <|audio_bos|> and <|audio_eos|>
        assert qwen.audio_tokens(seconds) == TokenCount(expected), seconds
    assert qwen.audio_tokens(30) == qwen.audio_tokens(45) == TokenCount(750 + 2)
    assert qwen.audio_tokens(0.01) == TokenCount(2)  # 1 frame: no audio token, no error
    assert qwen.audio_tokens(0) == TokenCount()  # no clip


def test_unknown_preset_is_refused_by_name():
    with pytest.raises(ValueError, match="preset"):
        get_preset("gpt-5")


# ----------------------------------------------------------------------------- the budget
def test_syllabus_budget_examples_in_a_512_context():
    image = image_tokens(mode="cls")
    assert TokenBudget(512).add("image", "image", image).add("What is this?", "text", 4) \
        .remaining == 507
    b = TokenBudget(512).add("3 s", "audio", audio_tokens(3)).add("prompt", "text", 4)
    assert (b.used, b.remaining) == (42, 470)
    b = TokenBudget().add("img", "image", 1).add("5 s", "audio", audio_tokens(5)) \
        .add("prompt", "text", 7)
    assert (b.used, b.remaining) == (1 + 63 + 7, 441)
    b = TokenBudget().add("30 s", "audio", audio_tokens(30)).add("prompt", "text", 1)
    assert (b.used, b.remaining, b.over_budget, b.fits) == (377, 135, 0, True)


def test_over_budget_amount_and_table():
    b = TokenBudget(512).add("llava image", "image", 576)
    assert (b.used, b.remaining, b.over_budget, b.fits) == (576, 0, 64, False)
    assert "OVER BUDGET by 64" in b.table()
    assert b.tokens_by_modality()["image"] == 576


def test_budget_rejects_bad_items():
    with pytest.raises(ValueError, match="context_length"):
        TokenBudget(0)
    with pytest.raises(ValueError, match="modality"):
        TokenBudget().add("x", "smell", 3)
    with pytest.raises(ValueError, match="tokens"):
        TokenBudget().add("x", "text", -1)


# ----------------------------------------------------------------------------- cost
def _one_attention_layer(x, context, weights):
    q, k, v = F.linear(x, weights[0]), F.linear(context, weights[1]), F.linear(context, weights[2])
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (1, N, M)
    return F.linear(scores.softmax(-1) @ v, weights[3])  # (1, N, D)


@pytest.mark.parametrize("queries,keys,width", [(37, 37, 32), (10, 130, 16), (1, 5, 8)])
def test_attention_flops_equal_torchs_flop_counter(queries, keys, width):
    weights = [torch.randn(width, width) for _ in range(4)]
    x, context = torch.randn(1, queries, width), torch.randn(1, keys, width)
    with FlopCounterMode(display=False) as counter:
        _one_attention_layer(x, context, weights)
    cost = attention_cost(queries, width, depth=1, key_length=keys)
    assert cost.total_flops == counter.get_total_flops()
    assert attention_cost(queries, width, depth=3, key_length=keys).total_flops == \
        3 * counter.get_total_flops()


def test_kv_cache_bytes_equal_the_cached_tensors():
    depth, length, width = 4, 33, 64
    cache = [(torch.zeros(length, width, dtype=torch.float16),) * 2 for _ in range(depth)]
    stored = sum(t.nbytes for layer in cache for t in layer)
    assert attention_cost(length, width, depth, bytes_per_value=2).kv_cache_bytes == stored
    # 7B-style LM (width 4096, 32 layers, fp16): one 576-token image keeps 288 MiB of K/V.
    assert attention_cost(576, 4096, 32).kv_cache_bytes == 288 * 2**20


def test_image_scaling_llava_grows_quadratically_flamingo_sequence_stays_short():
    costs = image_scaling_costs(range(0, 9), text_tokens=50, width=64, depth=4,
                                cross_attention_every=2, resampler_depth=1)
    assert costs["llava_sequence"] == [50 + 576 * n for n in range(9)]
    assert costs["flamingo_sequence"] == [50 + n for n in range(9)]
    flops = costs["llava_flops"]
    second_differences = {flops[i + 2] - 2 * flops[i + 1] + flops[i] for i in range(7)}
    assert second_differences == {4 * 4 * 2 * 576**2 * 64}  # depth * 4 * D * 2 * 576^2
    assert costs["llava_flops"][0] == costs["flamingo_flops"][0]  # no images: same text
    assert all(f < llava for f, llava in zip(costs["flamingo_flops"][1:], flops[1:]))
    assert costs["llava_kv_bytes"][8] > 8 * costs["flamingo_kv_bytes"][8]


def test_image_scaling_costs_one_image_by_hand():
    d = 8
    costs = image_scaling_costs([1], text_tokens=3, tokens_per_image=4, num_latents=2, width=d,
                                depth=2, cross_attention_every=2, resampler_depth=1,
                                bytes_per_value=1)
    ffn = 11008  # the default SwiGLU width (Vicuna-7B)
    # LLaVA: 7 positions, 2 layers: scores 4*7*7*d, projections 2*d*d*(4*7) per layer.
    assert costs["llava_attention_flops"] == [2 * (4 * 49 * d + 2 * d * d * 28)]
    # SwiGLU: gate, up and down matrices (d x ffn each), 2 FLOPs per multiply-add, 7 positions.
    assert costs["llava_mlp_flops"] == [2 * 3 * 2 * 7 * d * ffn]
    assert costs["llava_flops"] == [costs["llava_attention_flops"][0]
                                    + costs["llava_mlp_flops"][0]]
    # Flamingo: LM over 4 positions (2 layers), 1 cross layer 4 -> 2 latents, resampler 2 -> 6.
    lm = 2 * (4 * 16 * d + 2 * d * d * 16)
    cross = 4 * 4 * 2 * d + 2 * d * d * (2 * 4 + 2 * 2)
    resampler = 4 * 2 * 6 * d + 2 * d * d * (2 * 2 + 2 * 6)
    assert costs["flamingo_attention_flops"] == [lm + cross + resampler]
    # MLPs: the LM's SwiGLU over 4 positions (2 layers), the dense block after the one
    # cross-attention (4 positions) and the resampler's (2 latents): plain, width 4d.
    mlps = 2 * 3 * 2 * 4 * d * ffn + 2 * 2 * 4 * d * 4 * d + 2 * 2 * 2 * d * 4 * d
    assert costs["flamingo_mlp_flops"] == [mlps]
    assert costs["flamingo_flops"] == [lm + cross + resampler + mlps]
    assert costs["flamingo_kv_bytes"] == [2 * 2 * 4 * d + 2 * 2 * d]


def test_cost_functions_reject_bad_sizes():
    with pytest.raises(ValueError, match="width"):
        attention_cost(10, 0, 2)
    with pytest.raises(ValueError, match="sequence_length"):
        attention_cost(-1, 8, 2)
    with pytest.raises(ValueError, match="num_images"):
        image_scaling_costs([-1])
    with pytest.raises(ValueError, match="cross_attention_every"):
        image_scaling_costs([1], cross_attention_every=0)


# ----------------------------------------------------------------------------- calculator
def test_calculator_adds_images_audio_and_prompt():
    report = calculate_budget(512, num_images=1, image_mode="cls", audio_seconds=5,
                              prompt_tokens=7)
    assert report.segments == (("images", 1), ("audio", 63), ("prompt", 7))
    assert (report.used, report.remaining, report.over_budget) == (71, 441, 0)
    assert report.message.startswith("Fits: 71 of 512 used, 441 left")
    assert "251 STFT" not in report.details[1] and "501 STFT frames" in report.details[1]


def test_calculator_reports_over_budget_instead_of_raising():
    report = calculate_budget(512, num_images=2, image_mode="patches", image_size=336,
                              patch_size=14)
    assert (report.used, report.over_budget, report.remaining) == (1152, 640, 0)
    assert report.message.startswith("Over budget") and "640" in report.message


def test_calculator_turns_invalid_settings_into_a_message():
    cases = [dict(image_size=225), dict(hop_length=0, audio_seconds=3),
             dict(hop_length=512, audio_seconds=3), dict(audio_seconds=float("nan")),
             dict(image_mode="pixels"), dict(downsampling="16x")]
    for settings in cases:
        report = calculate_budget(**settings)
        assert report.error and report.used == 0 and report.message.startswith("Invalid")
    assert "patch_size 16" in calculate_budget(image_size=225).error


def test_calculator_with_whisper_settings_matches_the_preset():
    for seconds in (3, 30, 31):
        report = calculate_budget(num_images=0, audio_seconds=seconds,
                                  framing="centre-drop-last", window_seconds=30,
                                  pad_to_window=True,
                                  downsampling="Whisper: conv + stride-2 conv (2x)")
        assert report.segments[1][1] == get_preset("whisper").audio_tokens(seconds).memory
    # Qwen2-Audio's stack by hand (custom mode): 30 s, 3000 frames -> 1500 -> 750 tokens.
    report = calculate_budget(num_images=0, audio_seconds=30, framing="centre-drop-last",
                              downsampling="Qwen2-Audio: Whisper convs + pool (4x)")
    assert report.segments[1][1] == 750 == \
        get_preset("qwen2-audio").audio_tokens(30).context - 2
