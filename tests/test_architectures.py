"""Tests of course_lib.architectures: Flamingo's pieces, LLaVA's splice, the Thinker, sizes."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import attention
from course_lib.architectures import (
    IGNORE_INDEX,
    DecoderLM,
    FlamingoLikeModel,
    GatedCrossAttentionBlock,
    LlamaBlock,
    LlavaLikeModel,
    LlavaProjector,
    PerceiverResampler,
    Thinker,
    apply_rotary,
    count_on_meta,
    count_parameters,
    cross_attention_update,
    flamingo_training_stage,
    llava_training_stage,
    sequence_lengths,
    set_trainable,
    splice_image_tokens,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------------- gated block
def test_gated_block_is_reexported_from_attention():
    assert GatedCrossAttentionBlock is attention.GatedCrossAttentionBlock


def test_gated_block_is_exactly_the_identity_at_init():
    block = GatedCrossAttentionBlock(32, num_heads=4, kv_dim=24)
    hidden, media = torch.randn(2, 7, 32), torch.randn(2, 64, 24)
    assert block.attn_gate.item() == 0.0 and block.ff_gate.item() == 0.0
    assert torch.equal(block(hidden, media), hidden)


def test_gates_receive_nonzero_gradient_while_the_branches_get_none_at_init():
    block = GatedCrossAttentionBlock(32, num_heads=4)
    hidden, media = torch.randn(2, 7, 32), torch.randn(2, 10, 32)
    (block(hidden, media) * torch.randn(2, 7, 32)).sum().backward()
    assert block.attn_gate.grad.abs().item() > 1e-6
    assert block.ff_gate.grad.abs().item() > 1e-6
    # tanh(0) = 0 multiplies the branches, so their weights get exactly zero gradient at first
    assert torch.count_nonzero(block.cross_attention.q_proj.weight.grad) == 0


# ----------------------------------------------------------------------------- resampler
@pytest.mark.parametrize("num_media", [1, 50, 577])
def test_resampler_turns_any_number_of_media_tokens_into_num_latents(num_media):
    resampler = PerceiverResampler(32, num_latents=64, depth=2, num_heads=4)
    assert resampler(torch.randn(3, num_media, 32)).shape == (3, 64, 32)


def test_resampler_ignores_masked_media_tokens():
    resampler = PerceiverResampler(16, num_latents=8, depth=2, num_heads=4)
    media = torch.randn(2, 10, 16)
    padded = torch.cat([media, 100 * torch.randn(2, 5, 16)], dim=1)
    mask = torch.arange(15) < 10
    out = resampler(padded, media_mask=mask.expand(2, 15))
    torch.testing.assert_close(out, resampler(media))


def test_resampler_does_not_depend_on_the_order_of_media_tokens():
    resampler = PerceiverResampler(16, num_latents=8, depth=2, num_heads=4)
    media = torch.randn(2, 12, 16)
    shuffled = media[:, torch.randperm(12)]
    torch.testing.assert_close(resampler(shuffled), resampler(media))


def test_resampler_rejects_bad_inputs():
    resampler = PerceiverResampler(16, num_latents=8, depth=1, num_heads=4)
    with pytest.raises(ValueError, match="media"):
        resampler(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="media_mask"):
        resampler(torch.randn(2, 5, 16), media_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_heads"):
        PerceiverResampler(10, num_heads=4)
    with pytest.raises(ValueError, match="num_latents"):
        PerceiverResampler(16, num_latents=0, num_heads=4)


# ----------------------------------------------------------------------------- LLaVA
def test_linear_projector_is_x_w_transpose_plus_b():
    projector = LlavaProjector(6, 10, kind="linear")
    features = torch.randn(2, 4, 6)
    layer = projector.layers[0]
    torch.testing.assert_close(projector(features), features @ layer.weight.T + layer.bias)
    assert count_parameters(projector) == 6 * 10 + 10


def test_mlp_projector_is_linear_gelu_linear_by_hand():
    projector = LlavaProjector(6, 10, kind="mlp")
    features = torch.randn(2, 4, 6)
    first, last = projector.layers[0], projector.layers[2]
    hidden = features @ first.weight.T + first.bias
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))  # exact GELU
    torch.testing.assert_close(projector(features), hidden @ last.weight.T + last.bias)
    assert count_parameters(projector) == (6 * 10 + 10) + (10 * 10 + 10)


def test_projector_rejects_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        LlavaProjector(6, 10, kind="conv")
    with pytest.raises(ValueError, match="vision_dim"):
        LlavaProjector(0, 10)
    with pytest.raises(ValueError, match="image_features"):
        LlavaProjector(6, 10)(torch.randn(2, 4, 7))


IMAGE = 99


def test_splice_puts_the_image_tokens_at_the_placeholder_and_masks_their_labels():
    text = torch.randn(1, 5, 8)
    input_ids = torch.tensor([[11, 12, IMAGE, 13, 14]])
    image = torch.randn(1, 4, 8)
    out = splice_image_tokens(text, input_ids, image, IMAGE)
    assert out.embeddings.shape == (1, 5 - 1 + 4, 8)
    assert torch.equal(out.embeddings[0, 2:6], image[0])
    assert torch.equal(out.embeddings[0, :2], text[0, :2])
    assert torch.equal(out.embeddings[0, 6:], text[0, 3:])
    assert out.labels[0].tolist() == [11, 12] + [IGNORE_INDEX] * 4 + [13, 14]
    assert out.image_positions[0].tolist() == [False] * 2 + [True] * 4 + [False] * 2
    assert out.attention_mask.all()


def test_splice_uses_given_labels_and_pads_rows_with_different_numbers_of_images():
    text = torch.randn(2, 4, 8)
    input_ids = torch.tensor([[IMAGE, 1, IMAGE, 2], [3, 4, 5, IMAGE]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 2], [7, 8, 9, 6]])
    images = torch.randn(3, 3, 8)  # read in order: row 0 gets images 0, 1; row 1 gets image 2
    out = splice_image_tokens(text, input_ids, images, IMAGE, labels=labels)
    assert out.embeddings.shape == (2, 4 + 2 * 2, 8)
    assert torch.equal(out.embeddings[0, 0:3], images[0])
    assert torch.equal(out.embeddings[0, 4:7], images[1])
    assert torch.equal(out.embeddings[1, 3:6], images[2])
    assert out.labels[0].tolist() == [IGNORE_INDEX] * 7 + [2]
    assert out.labels[1].tolist() == [7, 8, 9] + [IGNORE_INDEX] * 3 + [IGNORE_INDEX] * 2
    assert out.attention_mask[1].tolist() == [True] * 6 + [False] * 2
    assert torch.equal(out.embeddings[1, 6:], torch.zeros(2, 8))


def test_splice_rejects_a_mismatch_between_placeholders_and_images():
    text, ids = torch.randn(1, 3, 8), torch.tensor([[1, IMAGE, 2]])
    with pytest.raises(ValueError, match="image_tokens holds 2"):
        splice_image_tokens(text, ids, torch.randn(2, 4, 8), IMAGE)
    with pytest.raises(ValueError, match="input_ids"):
        splice_image_tokens(text, ids[:, :2], torch.randn(1, 4, 8), IMAGE)
    with pytest.raises(ValueError, match="image_tokens"):
        splice_image_tokens(text, ids, torch.randn(1, 4, 5), IMAGE)
    with pytest.raises(ValueError, match="labels"):
        splice_image_tokens(text, ids, torch.randn(1, 4, 8), IMAGE, labels=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="image_token_id"):
        splice_image_tokens(text, ids, torch.randn(1, 4, 8), 99.0)


def small_lm(vocab=100, dim=32, depth=2, heads=4, ff=48):
    return DecoderLM(vocab, dim, depth, heads, ff)


def test_llava_like_model_grows_the_sequence_by_n_minus_1_per_image():
    model = LlavaLikeModel(None, 16, small_lm(), image_token_id=IMAGE)
    input_ids = torch.tensor([[1, IMAGE, 2, 3, 4]])
    logits, spliced = model(torch.randn(1, 9, 16), input_ids)
    assert logits.shape == (1, 5 - 1 + 9, 100)
    assert spliced.image_positions.sum() == 9
    assert sequence_lengths(50, 1, 576)["llava"] == 626
    assert sequence_lengths(50, 3, 576) == {"llava": 50 + 3 * 576, "flamingo": 50}


def test_llava_like_model_can_drop_the_cls_token_of_its_vision_encoder():
    encoder = nn.Linear(16, 16)
    model = LlavaLikeModel(encoder, 16, small_lm(), IMAGE, projector_kind="linear",
                           drop_cls_token=True)
    assert model.image_tokens(torch.randn(2, 577, 16)).shape == (2, 576, 32)


def test_flamingo_like_model_equals_its_language_model_at_init():
    lm = small_lm()
    model = FlamingoLikeModel(None, 16, lm, num_latents=8, num_heads=4)
    input_ids = torch.randint(0, 100, (2, 6))
    logits = model(torch.randn(2, 30, 16), input_ids)
    assert logits.shape == (2, 6, 100)  # the text sequence does not grow with the image
    assert torch.equal(logits, lm(input_ids))


# ----------------------------------------------------------------------------- LLaMA-like LM
def test_rotary_matches_the_complex_number_form():
    tokens = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    half = 4
    theta = 10_000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
    angle = torch.arange(5, dtype=torch.float64)[:, None] * theta  # (T, half)
    as_complex = torch.complex(tokens[..., :half], tokens[..., half:]) * torch.polar(
        torch.ones_like(angle), angle)
    expected = torch.cat([as_complex.real, as_complex.imag], dim=-1)
    torch.testing.assert_close(apply_rotary(tokens), expected)


def test_decoder_is_causal():
    lm = small_lm()
    ids = torch.randint(0, 100, (1, 8))
    changed = ids.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 100
    torch.testing.assert_close(lm(ids)[:, :5], lm(changed)[:, :5])
    assert not torch.allclose(lm(ids)[:, 5:], lm(changed)[:, 5:])


def test_decoder_and_models_reject_bad_inputs():
    with pytest.raises(ValueError, match="num_heads"):
        LlamaBlock(30, num_heads=4, ff_dim=8)
    with pytest.raises(ValueError, match="head_dim"):
        apply_rotary(torch.randn(1, 2, 3, 5))
    lm = small_lm()
    with pytest.raises(ValueError, match="input_ids"):
        lm(torch.tensor([[1, 100]]))
    with pytest.raises(ValueError, match="padding_mask"):
        lm(torch.tensor([[1, 2]]), padding_mask=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="embeddings"):
        lm.forward_embeddings(torch.randn(1, 2, 31))
    with pytest.raises(ValueError, match="image_token_id"):
        LlavaLikeModel(None, 16, lm, image_token_id=100)
    with pytest.raises(ValueError, match="language_model"):
        LlavaLikeModel(None, 16, nn.Linear(2, 2), image_token_id=1)
    with pytest.raises(ValueError, match="cross_every"):
        FlamingoLikeModel(None, 16, lm, num_heads=4, cross_every=0)
    with pytest.raises(ValueError, match="model"):
        count_parameters("not a model")
    with pytest.raises(ValueError, match="num_images"):
        sequence_lengths(50, -1, 576)
    with pytest.raises(ValueError, match="block"):
        cross_attention_update(nn.Linear(2, 2), torch.randn(1, 2, 2), torch.randn(1, 2, 2))


def test_padded_positions_do_not_change_the_real_tokens_outputs():
    lm = small_lm()
    ids = torch.randint(0, 100, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.arange(8) < 5
    torch.testing.assert_close(lm(padded, padding_mask=mask[None])[:, :5], lm(ids))


def llama_parameters_by_hand(vocab, dim, depth, ff):
    per_layer = 4 * dim * dim + 3 * dim * ff + 2 * dim  # q, k, v, o; gate, up, down; 2 norms
    return vocab * dim + depth * per_layer + dim + dim * vocab  # embedding, layers, norm, head


def test_meta_count_of_a_small_decoder_equals_the_hand_formula():
    size = count_on_meta(lambda: small_lm(vocab=50, dim=24, depth=3, heads=4, ff=40))
    assert size.parameters == llama_parameters_by_hand(50, 24, 3, 40)
    assert size.by_part["head"] == 24 * 50
    assert size.weight_bytes(torch.float32) == 4 * size.parameters
    assert size.weight_bytes(torch.float16) == 2 * size.parameters
    assert size.training_bytes() == 16 * size.parameters


def test_meta_count_of_a_llama_7b_like_stack_is_6_74_billion_without_allocating():
    models = []

    def build():
        models.append(DecoderLM(32000, 4096, 32, 32, 11008))
        return models[-1]

    size = count_on_meta(build)
    assert size.parameters == llama_parameters_by_hand(32000, 4096, 32, 11008) == 6_738_415_616
    assert all(p.is_meta for p in models[0].parameters())


def thinker_parameters_by_hand(vocab, dim, depth, image_dim, audio_dim, max_len, ratio=4):
    hidden = dim * ratio
    block = 2 * 2 * dim + 4 * (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)
    inputs = vocab * dim + (image_dim * dim + dim) + (audio_dim * dim + dim) + 3 * dim
    return inputs + max_len * dim + depth * block + 2 * dim + (dim * vocab + vocab)


def test_meta_count_of_a_small_thinker_equals_the_hand_formula():
    size = count_on_meta(lambda: Thinker(40, dim=16, depth=2, num_heads=4, image_dim=12,
                                         audio_dim=20, max_len=30))
    assert size.parameters == thinker_parameters_by_hand(40, 16, 2, 12, 20, 30)


def test_count_on_meta_rejects_builders_that_allocate_or_return_no_model():
    with pytest.raises(ValueError, match="build allocated"):
        count_on_meta(lambda: nn.Linear(3, 4, device="cpu"))
    with pytest.raises(ValueError, match="build"):
        count_on_meta(lambda: 3)
    with pytest.raises(ValueError, match="build"):
        count_on_meta(DecoderLM(10, 8, 1, 2, 8))


# ----------------------------------------------------------------------------- training stages
def test_llava_stages_train_the_projector_then_the_projector_and_the_llm():
    encoder = nn.Linear(16, 16)
    model = LlavaLikeModel(encoder, 16, small_lm(), IMAGE)
    projector, lm = count_parameters(model.projector), count_parameters(model.language_model)
    assert llava_training_stage(model, 1) == projector
    assert not any(p.requires_grad for p in model.language_model.parameters())
    assert llava_training_stage(model, 2) == projector + lm
    assert not any(p.requires_grad for p in encoder.parameters())
    logits, spliced = model(torch.randn(1, 4, 16), torch.tensor([[1, IMAGE, 2]]))
    logits.sum().backward()
    assert encoder.weight.grad is None and model.projector.layers[0].weight.grad is not None


def test_flamingo_stage_trains_only_the_resampler_and_the_gated_blocks():
    model = FlamingoLikeModel(None, 16, small_lm(depth=4), num_latents=8, num_heads=4,
                              cross_every=2)
    assert len(model.cross_blocks) == 2
    expected = count_parameters(model.resampler) + count_parameters(model.cross_blocks)
    assert flamingo_training_stage(model) == expected
    assert not any(p.requires_grad for p in model.language_model.parameters())


def test_stage_functions_reject_bad_arguments():
    model = LlavaLikeModel(None, 16, small_lm(), IMAGE)
    with pytest.raises(ValueError, match="stage"):
        llava_training_stage(model, 3)
    with pytest.raises(ValueError, match="model"):
        flamingo_training_stage(model)
    with pytest.raises(ValueError, match="trainable"):
        set_trainable(model, [nn.Linear(2, 2)])


# ----------------------------------------------------------------------------- Thinker
MODALITY_SUBSETS = [subset for r in (1, 2, 3)
                    for subset in itertools.combinations(("image", "audio", "text"), r)]


@pytest.mark.parametrize("subset", MODALITY_SUBSETS, ids="+".join)
def test_thinker_accepts_every_subset_of_modalities(subset):
    thinker = Thinker(30, dim=16, depth=2, num_heads=4, image_dim=12, audio_dim=20)
    inputs = {"image_tokens": torch.randn(2, 1, 12), "audio_tokens": torch.randn(2, 38, 20),
              "text_ids": torch.randint(0, 30, (2, 5))}
    given = {key: value for key, value in inputs.items() if key.split("_")[0] in subset}
    lengths = {"image": 1, "audio": 38, "text": 5}
    logits = thinker(**given)
    assert logits.shape == (2, sum(lengths[m] for m in subset), 30)
    _, layout = thinker.embed(**given)
    assert list(layout) == [m for m in ("image", "audio", "text") if m in subset]


def test_thinker_sequence_is_causal_over_the_concatenation():
    thinker = Thinker(30, dim=16, depth=2, num_heads=4, image_dim=12, audio_dim=20)
    image, audio, text = torch.randn(1, 1, 12), torch.randn(1, 6, 20), torch.randint(0, 30, (1, 5))
    logits = thinker(text, image, audio)
    later = text.clone()
    later[0, 3:] = (later[0, 3:] + 1) % 30
    torch.testing.assert_close(thinker(later, image, audio)[:, :1 + 6 + 3], logits[:, :10])
    weights = thinker.attention_weights()
    assert weights.shape == (2, 1, 4, 12, 12)
    assert torch.equal(weights.triu(1), torch.zeros_like(weights))  # never looks ahead


def test_thinker_loss_is_cross_entropy_of_the_previous_position():
    thinker = Thinker(30, dim=16, depth=1, num_heads=4, image_dim=12)
    image, text = torch.randn(2, 1, 12), torch.randint(0, 30, (2, 4))
    labels = torch.full_like(text, IGNORE_INDEX)
    labels[:, 2:] = text[:, 2:]  # score the last two text tokens only
    logits = thinker(text, image)  # text token t sits at sequence position 1 + t
    by_hand = F.cross_entropy(logits[:, [2, 3]].reshape(-1, 30), text[:, 2:].reshape(-1))
    torch.testing.assert_close(thinker.loss(text, labels, image), by_hand)


def test_thinker_generate_is_greedy_and_stops_at_eos():
    thinker = Thinker(30, dim=16, depth=1, num_heads=4)
    prompt = torch.randint(3, 30, (2, 3))
    out = thinker.generate(prompt, max_new_tokens=3)
    sequence = prompt
    for _ in range(3):
        sequence = torch.cat([sequence, thinker(sequence)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(out, sequence[:, 3:])
    eos = int(out[0, 0])
    stopped = thinker.generate(prompt[:1], max_new_tokens=3, eos_id=eos)
    assert stopped.tolist() == [[eos]]


def test_thinker_learns_to_answer_from_the_image_token():
    thinker = Thinker(14, dim=32, depth=1, num_heads=4, image_dim=10)
    classes = torch.arange(10).repeat(4)
    images = F.one_hot(classes, 10).float()[:, None] + 0.1 * torch.randn(40, 1, 10)
    question = torch.full((40, 2), 10)
    text = torch.cat([question, classes[:, None] + 0, torch.full((40, 1), 11)], dim=1)
    labels = text.masked_fill(torch.arange(4) < 2, IGNORE_INDEX)
    optimizer = torch.optim.Adam(thinker.parameters(), lr=1e-2)
    for _ in range(80):
        loss = thinker.loss(text, labels, image_tokens=images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    answers = thinker.generate(question, image_tokens=images, max_new_tokens=2, eos_id=11)
    assert torch.equal(answers[:, 0], classes)


def test_image_three_seconds_of_audio_and_a_question_make_44_tokens():
    from course_lib.audio import AudioEncoder, log_mel_spectrogram
    from course_lib.vision import ViTEncoder

    image = ViTEncoder(224, 16, 3, dim=128, depth=1, num_heads=4)(torch.rand(1, 3, 224, 224))
    mel = log_mel_spectrogram(torch.zeros(1, 3 * 16000) + 0.01 * torch.randn(1, 3 * 16000))
    assert mel.shape == (1, 128, 301)
    audio = AudioEncoder(128, dim=192, depth=1, num_heads=4)(mel)
    assert audio.shape == (1, 38, 192)
    thinker = Thinker(50, dim=256, depth=1, num_heads=8, image_dim=128, audio_dim=192)
    sequence, layout = thinker.embed(torch.randint(0, 50, (1, 5)), image[:, None], audio)
    assert sequence.shape == (1, 1 + 38 + 5, 256)
    assert layout == {"image": slice(0, 1), "audio": slice(1, 39), "text": slice(39, 44)}


def test_thinker_rejects_bad_inputs():
    thinker = Thinker(30, dim=16, depth=1, num_heads=4, image_dim=12, max_len=10)
    with pytest.raises(ValueError, match="audio_tokens"):
        thinker(audio_tokens=torch.randn(1, 3, 12))
    with pytest.raises(ValueError, match="image_tokens"):
        thinker(image_tokens=torch.randn(1, 3, 11))
    with pytest.raises(ValueError, match="text_ids"):
        thinker(text_ids=torch.tensor([[1, 30]]))
    with pytest.raises(ValueError, match="at least one"):
        thinker()
    with pytest.raises(ValueError, match="batch size"):
        thinker(torch.randint(0, 30, (2, 3)), torch.randn(1, 1, 12))
    with pytest.raises(ValueError, match="max_len"):
        thinker(torch.randint(0, 30, (1, 11)))
    with pytest.raises(ValueError, match="labels"):
        thinker.loss(torch.randint(0, 30, (1, 3)), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="image_dim"):
        Thinker(30, dim=16, depth=1, num_heads=4, image_dim=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        thinker.generate(torch.randint(0, 30, (1, 3)), max_new_tokens=0)
    with pytest.raises(ValueError, match="labels marks no position"):
        thinker.loss(torch.randint(0, 30, (1, 3)), torch.full((1, 3), IGNORE_INDEX))
