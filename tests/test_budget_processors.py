"""The presets against the real processors of Hugging Face ``transformers``, built without weights.

Each open model's image processor or feature extractor is constructed from its released
checkpoint's published configuration values (written below with their source), and its
processor from that plus a tiny in-memory tokenizer holding only the special tokens it needs
(nothing is downloaded). The count each processor emits (its placeholder tokens, or the
whole token sequence it writes for one image or clip) must equal the preset's count, over
grids of sizes and durations that include tiny, huge, odd and off-grid cases.
"""

import math
import random

import numpy as np
import pytest
import torch
import transformers  # a dev dependency (pyproject.toml): a missing install fails here
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from course_lib.budget import PRESETS, get_preset, smart_resize

# Grids: (height, width) in pixels, and durations in seconds.
ODD_SIZES = [(1, 1), (3, 5), (20, 20), (27, 29), (28, 28), (41, 999), (224, 224), (223, 225),
             (336, 336), (337, 335), (500, 500), (600, 400), (750, 1000), (1000, 750),
             (333, 777), (768, 1366), (1080, 1920), (1456, 1092), (2000, 130)]
HUGE_SIZES = [(3000, 4000), (4032, 3024), (8000, 6000), (10, 1999), (9999, 50), (12000, 12000)]
HELPER_GRID = [(h, w) for h in (1, 14, 27, 56, 99, 224, 360, 511, 750, 1001, 2047, 4096, 9000)
               for w in (1, 13, 28, 57, 100, 225, 359, 512, 1000, 1999, 4095, 7001)
               if max(h, w) / min(h, w) <= 200]
RANDOM_SIZES = [(h, w) for h, w in ((random.Random(seed).randint(1, 1600),
                                    random.Random(seed + 1000).randint(1, 1600))
                                   for seed in range(40)) if max(h, w) / min(h, w) <= 200]
DURATIONS = [0.001, 0.01, 0.0125, 0.019, 0.03, 0.05, 0.5, 1.0, 2.99, 3.0, 3.3333, 10.005,
             17.3, 29.99, 30.0, 30.01, 45.0, 61.7]


def tiny_tokenizer(special_tokens):
    """A word-level tokenizer: line breaks (runs of them, as one piece, like Llama 3's
    pre-tokenizer) and the given special tokens; everything else is [UNK]."""
    vocab = {"[UNK]": 0, "\n": 1, "\n\n": 2, "\n\n\n": 3}
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated")
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend,
                                                     unk_token="[UNK]")
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    return tokenizer


def image(height, width):
    return np.full((height, width, 3), 128, dtype=np.uint8)  # (H, W, C)


CHANNELS_LAST = {"input_data_format": "channels_last"}  # a 1 x 1 x 3 array is ambiguous


# ----------------------------------------------------------------------------- Qwen2-VL
@pytest.fixture(scope="module")
def qwen2_vl_processor():
    # Qwen/Qwen2-VL-7B-Instruct, preprocessor_config.json: min_pixels 3136, max_pixels
    # 12845056, patch_size 14, merge_size 2, temporal_patch_size 2.
    return transformers.Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056,
                                                 patch_size=14, merge_size=2,
                                                 temporal_patch_size=2)


def qwen2_vl_placeholders(processor, grid_thw):
    """``Qwen2VLProcessor.replace_image_token``, called on the image processor's output."""
    holder = type("Holder", (), {"image_processor": processor, "image_token": "<|image_pad|>"})
    text = transformers.Qwen2VLProcessor.replace_image_token(holder(), {"image_grid_thw": [
        grid_thw]}, 0)
    return text.count("<|image_pad|>")


def test_qwen2_vl_equals_the_image_processors_grid(qwen2_vl_processor):
    preset = get_preset("qwen2-vl")
    for height, width in ODD_SIZES + RANDOM_SIZES:
        grid = qwen2_vl_processor(images=[image(height, width)], return_tensors="np",
                                  **CHANNELS_LAST)[
            "image_grid_thw"][0]
        placeholders = qwen2_vl_placeholders(qwen2_vl_processor, grid)
        assert preset.image_tokens(height, width).context == placeholders + 2, (height, width)


def test_qwen2_vl_equals_the_processors_helper_on_huge_and_many_sizes(qwen2_vl_processor):
    preset = get_preset("qwen2-vl")
    cases = HELPER_GRID + HUGE_SIZES
    for height, width in cases:
        if max(height, width) / min(height, width) > 200:
            continue
        patches = qwen2_vl_processor.get_number_of_image_patches(height, width)
        assert preset.image_tokens(height, width).context == patches // 4 + 2, (height, width)


def test_qwen2_vl_refuses_what_the_processor_refuses(qwen2_vl_processor):
    with pytest.raises(ValueError, match="aspect ratio"):
        qwen2_vl_processor(images=[image(2, 500)], return_tensors="np")
    with pytest.raises(ValueError, match="aspect ratio over 200"):
        get_preset("qwen2-vl").image_tokens(2, 500)


def test_qwen2_vl_min_and_max_pixels_are_adjustable(qwen2_vl_processor):
    from dataclasses import replace

    small = replace(get_preset("qwen2-vl").image, min_pixels=256 * 28 * 28,
                    max_pixels=1280 * 28 * 28)  # the range the model card suggests
    processor = transformers.Qwen2VLImageProcessorPil(min_pixels=256 * 784,
                                                      max_pixels=1280 * 784, patch_size=14,
                                                      merge_size=2, temporal_patch_size=2)
    for height, width in ODD_SIZES + HUGE_SIZES[:4]:
        patches = processor.get_number_of_image_patches(height, width)
        assert small.tokens(height, width).context == patches // 4 + 2, (height, width)
    assert smart_resize(10, 10, min_pixels=256 * 784) == (448, 448)


# ----------------------------------------------------------------------------- LLaVA
@pytest.fixture(scope="module")
def llava_processor():
    # llava-hf/llava-1.5-7b-hf: CLIPImageProcessor with size shortest_edge 336, crop_size
    # 336 x 336; processor_config: patch_size 14, vision_feature_select_strategy "default",
    # num_additional_image_tokens 1 (the CLS, dropped again by "default").
    image_processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return transformers.LlavaProcessor(image_processor=image_processor,
                                       tokenizer=tiny_tokenizer(["<image>"]), patch_size=14,
                                       vision_feature_select_strategy="default",
                                       num_additional_image_tokens=1)


def count_tokens(processor, prompt, token, **inputs):
    ids = processor(text=[prompt], return_tensors="np", **inputs)["input_ids"][0]
    return len(ids), int((ids == processor.tokenizer.convert_tokens_to_ids(token)).sum())


def test_llava_1_5_always_576(llava_processor):
    preset = get_preset("llava-1.5")
    for height, width in ODD_SIZES + HUGE_SIZES[:2]:
        _, placeholders = count_tokens(llava_processor, "<image>", "<image>",
                                       images=[image(height, width)], images_kwargs=CHANNELS_LAST)
        assert preset.image_tokens(height, width).context == placeholders == 576


@pytest.fixture(scope="module")
def llava_next_processor():
    # llava-hf/llava-v1.6-mistral-7b-hf: image_grid_pinpoints [[336, 672], [672, 336],
    # [672, 672], [1008, 336], [336, 1008]], size shortest_edge 336, crop_size 336; processor:
    # patch_size 14, vision_feature_select_strategy "default", num_additional_image_tokens 1.
    image_processor = transformers.LlavaNextImageProcessorPil(
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return transformers.LlavaNextProcessor(image_processor=image_processor,
                                           tokenizer=tiny_tokenizer(["<image>"]),
                                           patch_size=14,
                                           vision_feature_select_strategy="default",
                                           num_additional_image_tokens=1)


def test_llava_next_equals_the_processors_placeholders(llava_next_processor):
    preset = get_preset("llava-next")
    for height, width in ODD_SIZES + RANDOM_SIZES + HUGE_SIZES[:2]:
        _, placeholders = count_tokens(llava_next_processor, "<image>", "<image>",
                                       images=[image(height, width)], images_kwargs=CHANNELS_LAST)
        assert preset.image_tokens(height, width).context == placeholders, (height, width)


def test_llava_next_equals_the_processors_helper_on_many_sizes(llava_next_processor):
    preset = get_preset("llava-next")
    cases = HELPER_GRID + HUGE_SIZES
    helper = llava_next_processor._get_num_multimodal_tokens(image_sizes=cases)
    for (height, width), expected in zip(cases, helper["num_image_tokens"]):
        assert preset.image_tokens(height, width).context == expected, (height, width)


# ----------------------------------------------------------------------------- Idefics3
IDEFICS3_SPECIAL = (["<image>", "<fake_token_around_image>", "<global-img>",
                     "<end_of_utterance>"]
                    + [f"<row_{r + 1}_col_{c + 1}>" for r in range(6) for c in range(6)])


@pytest.fixture(scope="module")
def idefics3_processor():
    # HuggingFaceM4/Idefics3-8B-Llama3: preprocessor_config size longest_edge 1456,
    # max_image_size longest_edge 364, do_image_splitting true; processor image_seq_len 169.
    image_processor = transformers.Idefics3ImageProcessorPil(
        size={"longest_edge": 1456}, max_image_size={"longest_edge": 364},
        do_image_splitting=True)
    return transformers.Idefics3Processor(image_processor=image_processor,
                                          tokenizer=tiny_tokenizer(IDEFICS3_SPECIAL),
                                          image_seq_len=169)


def test_idefics3_equals_the_processors_sequence(idefics3_processor):
    preset = get_preset("idefics3")
    for height, width in ODD_SIZES + RANDOM_SIZES[:16] + HUGE_SIZES[:1]:
        total, placeholders = count_tokens(idefics3_processor, "<image>", "<image>",
                                           images=[[image(height, width)]],
                                           images_kwargs=CHANNELS_LAST)
        rows, cols = preset.image.tiles(height, width)
        assert placeholders == 169 * (rows * cols + 1), (height, width)
        assert preset.image_tokens(height, width).context == total, (height, width)


# ----------------------------------------------------------------------------- audio
@pytest.fixture(scope="module")
def qwen2_audio_processor():
    # Qwen/Qwen2-Audio-7B-Instruct: WhisperFeatureExtractor with feature_size 128,
    # sampling_rate 16000, hop_length 160, chunk_length 30, n_fft 400.
    feature_extractor = transformers.WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
    tokenizer = tiny_tokenizer(["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
    return transformers.Qwen2AudioProcessor(feature_extractor=feature_extractor,
                                            tokenizer=tokenizer)


def test_qwen2_audio_equals_the_processors_sequence(qwen2_audio_processor):
    preset = get_preset("qwen2-audio")
    for seconds in DURATIONS:
        clip = np.zeros(round(seconds * 16000), dtype=np.float32)
        total, placeholders = count_tokens(qwen2_audio_processor,
                                           "<|audio_bos|><|AUDIO|><|audio_eos|>", "<|AUDIO|>",
                                           audio=[clip], sampling_rate=16000)
        assert preset.audio_tokens(seconds).context == total == placeholders + 2, seconds
    assert preset.audio_tokens(45).context == 750 + 2


def test_whisper_memory_equals_the_feature_extractor_and_encoder():
    # openai/whisper-large-v2 style: 80 mel bins, 30 s chunks; encoder built from a config
    # (random weights, tiny width) to read the output length: max_source_positions 1500.
    feature_extractor = transformers.WhisperFeatureExtractor(feature_size=80)
    config = transformers.WhisperConfig(d_model=8, encoder_layers=1, encoder_attention_heads=1,
                                        encoder_ffn_dim=8, decoder_layers=1,
                                        decoder_attention_heads=1, decoder_ffn_dim=8,
                                        num_mel_bins=80, max_source_positions=1500,
                                        max_target_positions=448)
    encoder = transformers.WhisperModel(config).get_encoder().eval()
    preset = get_preset("whisper")
    assert preset.context_length == config.max_target_positions == 448
    short = [s for s in DURATIONS if s <= 30]
    for seconds in short:
        clip = np.zeros(round(seconds * 16000), dtype=np.float32)
        features = feature_extractor(clip, sampling_rate=16000, return_tensors="pt")
        assert features["input_features"].shape[-1] == 3000  # padded to 30 s
        if seconds in (0.001, 3.0, 30.0):
            with torch.no_grad():
                positions = encoder(features["input_features"]).last_hidden_state.shape[1]
            assert positions == 1500
        assert preset.audio_tokens(seconds).memory == 1500 and \
            preset.audio_tokens(seconds).context == 0
    # Longer clips: one 30 s window (1500 positions) after another.
    for seconds in (30.01, 45.0, 61.7):
        assert preset.audio_tokens(seconds).memory == 1500 * math.ceil(seconds / 30)


def test_every_open_preset_is_compared_here():
    open_presets = {name for name, preset in PRESETS.items() if preset.kind == "open"}
    assert open_presets == {"llava-1.5", "llava-next", "qwen2-vl", "idefics3", "whisper",
                            "qwen2-audio"}
