"""Robustness of the three multimodal designs: LLaVA, Flamingo and the unified Thinker.

Wrong ids, masks, widths, sizes and models are refused by name before any layer runs; huge
sizes fail at once instead of allocating; float64, numpy and non-contiguous inputs give the
float32 answer; a batch of one and greedy decoding work, and the shared decoder is the
step-by-step argmax recomputed here by hand.
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    NOT_INT,
    as_float32,
    assert_close_to_float32,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
)
from torch import nn

from course_lib.architectures import (
    DecoderLM,
    FlamingoLikeModel,
    LlavaLikeModel,
    LlavaProjector,
    PerceiverResampler,
    SplicedSequence,
    Thinker,
    VisionTower,
    flamingo_training_stage,
    gate_values,
    instruction_labels,
    llava_training_stage,
    media_attention_mask,
    splice_image_tokens,
)
from course_lib.vision import ViTEncoder

VOCAB, MARKER = 12, 11
SOME_NOT_A_TENSOR = not_a_tensor().filter(lambda value: value is not None)  # None: 'absent'
torch.manual_seed(0)
LM = DecoderLM(VOCAB, 8, 1, 2, 16).eval()
RESAMPLER = PerceiverResampler(6, num_latents=2, depth=1, num_heads=2).eval()
FLAMINGO = FlamingoLikeModel(None, 6, LM, num_latents=2, resampler_depth=1, num_heads=2,
                             media_token_id=MARKER).eval()
LLAVA = LlavaLikeModel(None, 6, LM, image_token_id=MARKER).eval()
THINKER = Thinker(VOCAB, dim=8, depth=1, num_heads=2, image_dim=6, audio_dim=5,
                  max_len=16).eval()
IDS = torch.tensor([[MARKER, 3, 4], [MARKER, 5, 6]])
BAD_ID_KINDS = st.one_of(SOME_NOT_A_TENSOR, tensor_of_dtype((2, 3), NOT_INT),
                         st.just(torch.tensor([1, 2])))
BAD_IDS = BAD_ID_KINDS | st.sampled_from([torch.tensor([[VOCAB]]), torch.tensor([[-1, 2]])])


def _greedy_by_hand(next_logits, ids, steps):
    for _ in range(steps):
        ids = torch.cat([ids, next_logits(ids).argmax(dim=-1, keepdim=True)], dim=1)
    return ids


# ----------------------------------------------------------------------------- constructors
@covers(PerceiverResampler, FlamingoLikeModel, LlavaProjector, LlavaLikeModel, Thinker,
        VisionTower, DecoderLM)
@given(bad_int(1), st.sampled_from([10**7, 10**9, 2**40]))
def test_constructors_refuse_bad_and_huge_sizes_at_once(size, huge):
    # A huge size would allocate gigabytes of weights before anything failed.
    assert_rejects(PerceiverResampler, "dim", size)
    assert_rejects(PerceiverResampler, "num_latents", 8, num_latents=huge, num_heads=2)
    assert_rejects(LlavaProjector, "vision_dim", size, 8)
    assert_rejects(LlavaProjector, "llm_dim", 8, huge)
    assert_rejects(LlavaProjector, "kind", 8, 8, kind="mlp3x")
    assert_rejects(Thinker, "vocab_size", size)
    assert_rejects(Thinker, "vocab_size", huge, dim=64)
    assert_rejects(Thinker, "depth", 10, dim=8, depth=huge, num_heads=2)
    assert_rejects(Thinker, "dropout", 10, dim=8, num_heads=2, dropout=1.5)
    assert_rejects(DecoderLM, "vocab_size * dim", huge, 64, 1, 2, 16)
    assert_rejects(DecoderLM, "dim * ff_dim", 10, 64, 1, 2, huge)
    assert_rejects(DecoderLM, "depth", 10, 8, huge, 2, 16)
    assert_rejects(FlamingoLikeModel, "language_model", None, 6, "lm")
    assert_rejects(FlamingoLikeModel, "media_token_id", None, 6, LM, media_token_id=VOCAB)
    assert_rejects(FlamingoLikeModel, "vision_encoder", "vit", 6, LM)
    assert_rejects(LlavaLikeModel, "image_token_id", None, 6, LM, image_token_id=True)
    assert_rejects(LlavaLikeModel, "drop_cls_token", None, 6, LM, MARKER, drop_cls_token="no")
    vit = ViTEncoder(image_size=8, patch_size=4, in_channels=1, dim=6, depth=2, num_heads=2)
    assert_rejects(VisionTower, "select_layer", vit, select_layer=0)
    assert_rejects(VisionTower, "vit", nn.Linear(2, 2))


# ----------------------------------------------------------------------------- Flamingo
@covers(PerceiverResampler.forward, PerceiverResampler.resample_images)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 3, 6), NOT_FLOAT),
                 st.just(torch.zeros(1, 3, 5)), st.just(torch.zeros(3, 6))),
       st.one_of(SOME_NOT_A_TENSOR, tensor_of_dtype((1, 3), (torch.float32, torch.int64)),
                 st.just(torch.ones(1, 4, dtype=torch.bool))))
def test_the_resampler_refuses_bad_media_and_masks(media, mask):
    assert_rejects(RESAMPLER, "media", media)
    assert_rejects(RESAMPLER, "media_mask", torch.zeros(1, 3, 6), mask)
    assert_rejects(RESAMPLER.resample_images, "media", torch.zeros(1, 3, 6))
    assert_rejects(RESAMPLER.resample_images, "media_mask", torch.zeros(1, 2, 3, 6),
                   torch.ones(1, 2, 4, dtype=torch.bool))


@covers(PerceiverResampler.forward, PerceiverResampler.resample_images)
@given(float_tensors((1, 2, 3, 6)))
def test_each_image_is_resampled_on_its_own_in_any_dtype(media):
    with torch.no_grad():
        latents = RESAMPLER.resample_images(media)
        assert latents.shape == (1, 2, 2, 6)
        for image in range(2):  # the same as resampling that image alone
            alone = RESAMPLER(as_float32(media)[:, image])
            torch.testing.assert_close(latents[:, image], alone, rtol=1e-4, atol=1e-5)


@covers(media_attention_mask)
@given(BAD_ID_KINDS, bad_int(1, 10**4), st.sampled_from([10**5, 10**7]))
def test_media_attention_mask_checks_ids_and_sizes(input_ids, count, huge):
    assert_rejects(media_attention_mask, "input_ids", input_ids, MARKER, 1, 2)
    assert_rejects(media_attention_mask, "num_images", IDS, MARKER, count, 2)
    assert_rejects(media_attention_mask, "num_latents", IDS, MARKER, 1, count)
    assert_rejects(media_attention_mask, "num_latents", torch.zeros(64, 64, dtype=torch.long),
                   MARKER, 2, huge)  # would be a (64, 64, 2 huge) bool tensor
    assert_rejects(media_attention_mask, "media_token_id", IDS, "<image>", 1, 2)
    allowed, has_image = media_attention_mask(torch.tensor([[3, MARKER, 4, MARKER, 5]]),
                                              MARKER, 2, 1)
    assert has_image.tolist() == [[False, True, True, True, True]]
    assert allowed[0, :, :].tolist() == [[False, False], [True, False], [True, False],
                                         [False, True], [False, True]]


@covers(FlamingoLikeModel.forward, FlamingoLikeModel.hidden_states,
        FlamingoLikeModel.image_latents, FlamingoLikeModel.labels, FlamingoLikeModel.loss)
@given(BAD_IDS, not_a_number())
def test_flamingo_refuses_bad_ids_scales_and_labels(input_ids, alpha_scale):
    media = torch.randn(2, 3, 6)
    assert_rejects(FLAMINGO, "input_ids", media, input_ids)
    assert_rejects(FLAMINGO, "alpha_scale", media, IDS, alpha_scale=alpha_scale)
    assert_rejects(FLAMINGO, "media", torch.randn(2, 3, 5), IDS)
    assert_rejects(FLAMINGO, "media", [[0.0] * 6], IDS)
    assert_rejects(FLAMINGO, "media_mask", media, IDS, media_mask=torch.ones(2, 3))
    assert_rejects(FLAMINGO.labels, "input_ids", input_ids)
    assert_rejects(FLAMINGO.loss, "labels", media, IDS, IDS.float())
    assert_rejects(FLAMINGO.loss, "labels", media, IDS, IDS[:, :2])
    assert_rejects(FLAMINGO.hidden_states, "media", torch.randn(1, 3, 6), IDS)  # batch 1 vs 2


@covers(FlamingoLikeModel.forward, FlamingoLikeModel.hidden_states,
        FlamingoLikeModel.image_latents, FlamingoLikeModel.labels, FlamingoLikeModel.loss)
@given(float_tensors((2, 3, 6)))
def test_flamingo_takes_float64_numpy_and_strided_media(media):
    with torch.no_grad():
        assert_close_to_float32(FLAMINGO(media, IDS), FLAMINGO(as_float32(media), IDS))
        closed = FLAMINGO(media, IDS, alpha_scale=0)  # every gate closed: the LM alone
        torch.testing.assert_close(closed, LM(IDS))
        assert FLAMINGO(as_float32(media)[:1], IDS[:1]).shape == (1, 3, VOCAB)  # batch 1
        assert FLAMINGO.labels(IDS)[:, 0].tolist() == [-100, -100]


@covers(FlamingoLikeModel.generate, LlavaLikeModel.generate, Thinker.generate)
@given(bad_int(1, 16_384), st.one_of(bad_int(0, VOCAB - 1), st.just(VOCAB)))
def test_generation_refuses_bad_lengths_and_eos_ids(max_new_tokens, eos_id):
    media = torch.randn(2, 3, 6)
    for model, args in ((FLAMINGO, (media, IDS)), (LLAVA, (media, IDS)),
                        (THINKER, (IDS,))):
        assert_rejects(model.generate, "max_new_tokens", *args, max_new_tokens=max_new_tokens)
        assert_rejects(model.generate, "eos_id", *args, eos_id=eos_id if eos_id is not None
                       else "eos")
    assert_rejects(LLAVA.generate, "input_ids", media, IDS.float())
    assert_rejects(THINKER.generate, "text_ids", [[1, 2]])


@covers(FlamingoLikeModel.generate, LlavaLikeModel.generate, Thinker.generate)
@given(st.integers(1, 4), st.integers(0, VOCAB - 1))
def test_every_model_decodes_greedily_step_by_step(steps, eos_id):
    media = torch.randn(2, 3, 6)
    image = torch.randn(2, 1, 6)
    with torch.no_grad():
        cases = (
            (FLAMINGO.generate(media, IDS, steps), lambda ids: FLAMINGO(media, ids)[:, -1]),
            (LLAVA.generate(media, IDS, steps),
             lambda ids: LLAVA(media, ids)[0][:, -1]),
            (THINKER.generate(IDS, image, max_new_tokens=steps),
             lambda ids: THINKER(ids, image)[:, -1]),
        )
        for generated, next_logits in cases:
            assert torch.equal(generated, _greedy_by_hand(next_logits, IDS, steps)[:, 3:])
        stopped = FLAMINGO.generate(media, IDS, 6, eos_id=eos_id)
        for row in stopped.tolist():  # after an eos, only eos
            assert eos_id not in row or set(row[row.index(eos_id):]) == {eos_id}


@covers(flamingo_training_stage, gate_values, llava_training_stage)
@given(st.one_of(st.just(LLAVA), st.just(LM), st.none(), st.text(max_size=2)),
       st.one_of(bad_int(1, 2), st.just(True), st.just(3)))
def test_training_stages_check_the_model_and_the_stage(model, stage):
    assert_rejects(flamingo_training_stage, "model", model)
    assert_rejects(gate_values, "model", model)
    assert_rejects(llava_training_stage, "model", FLAMINGO, 1)
    assert_rejects(llava_training_stage, "stage", LLAVA, stage)  # True is not stage 1
    assert gate_values(FLAMINGO) == {"attention": [0.0], "feed_forward": [0.0]}


# ----------------------------------------------------------------------------- LLaVA
@covers(splice_image_tokens, SplicedSequence, instruction_labels)
@given(st.sampled_from(["text_embeddings", "input_ids", "image_tokens", "image_token_id",
                        "labels", "attention_mask"]))
def test_the_splice_refuses_each_bad_argument(name):
    args = {"text_embeddings": torch.zeros(1, 3, 8), "input_ids": torch.tensor([[1, 9, 2]]),
            "image_tokens": torch.zeros(1, 2, 8), "image_token_id": 9, "labels": None,
            "attention_mask": None}
    args[name] = {"text_embeddings": torch.zeros(1, 3), "input_ids": torch.tensor([[1, 9]]),
                  "image_tokens": torch.zeros(1, 2, 7), "image_token_id": 9.0,
                  "labels": torch.zeros(1, 3), "attention_mask": torch.full((1, 3), 2)}[name]
    assert_rejects(splice_image_tokens, name, **args)
    assert_rejects(instruction_labels, "answer_starts", torch.tensor([[1, 2]]), [0.5])
    assert_rejects(instruction_labels, "attention_mask", torch.tensor([[1, 2]]), [1],
                   torch.ones(1, 2))


@covers(splice_image_tokens, SplicedSequence, instruction_labels)
@given(float_tensors((2, 4, 8)), float_tensors((2, 3, 8)))
def test_the_splice_puts_each_image_at_its_placeholder(text, images):
    ids = torch.tensor([[1, 9, 2, 3], [9, 4, 5, 6]])
    spliced = splice_image_tokens(text, ids, images, 9)
    text, images = torch.as_tensor(text), torch.as_tensor(images)
    by_hand = torch.cat([text[0, :1], images[0], text[0, 2:]])  # text[:p], image, text[p+1:]
    torch.testing.assert_close(spliced.embeddings[0], by_hand.to(spliced.embeddings.dtype))
    assert spliced.embeddings.shape == (2, 6, 8) and spliced.image_positions.sum() == 6
    labels = instruction_labels(ids, torch.tensor([2, 3]), torch.tensor([[1, 1, 1, 0]] * 2))
    assert labels.tolist() == [[-100, -100, 2, -100], [-100, -100, -100, -100]]


@covers(LlavaProjector.forward, LlavaLikeModel.image_tokens, LlavaLikeModel.forward,
        LlavaLikeModel.loss, VisionTower.forward)
@given(float_tensors((2, 3, 6)), st.one_of(not_a_tensor(), tensor_of_dtype((2, 3, 6), NOT_FLOAT),
                                           st.just(torch.zeros(2, 3, 5))))
def test_llava_casts_float64_features_and_refuses_bad_ones(features, bad):
    assert_rejects(LLAVA.image_tokens, "images", bad)
    assert_rejects(LLAVA.projector, "image_features", bad)
    assert_rejects(LLAVA.loss, "labels", torch.zeros(2, 3, 6), IDS, IDS.float())
    assert_rejects(LLAVA, "input_ids", torch.zeros(2, 3, 6), IDS.double())
    with torch.no_grad():
        logits, spliced = LLAVA(features, IDS)
        expected, _ = LLAVA(as_float32(features), IDS)
        assert_close_to_float32(logits, expected)
        assert spliced.embeddings.shape[1] == 3 + 3 - 1
        loss = LLAVA.loss(features, IDS, instruction_labels(IDS, [1, 1]))
        assert torch.isfinite(loss)
    vit = ViTEncoder(image_size=8, patch_size=4, in_channels=1, dim=6, depth=2, num_heads=2)
    tower = VisionTower(vit).eval()
    assert_rejects(tower, "images", torch.zeros(1, 8, 8))
    with torch.no_grad():
        images = torch.rand(1, 1, 8, 8)
        assert_close_to_float32(tower(images.double()), tower(images))


# ----------------------------------------------------------------------------- the Thinker
@covers(Thinker.embed, Thinker.hidden_states, Thinker.forward, Thinker.loss,
        Thinker.attention_weights)
@given(BAD_IDS, st.one_of(SOME_NOT_A_TENSOR, tensor_of_dtype((2, 1, 6), NOT_FLOAT),
                          st.just(torch.zeros(2, 1, 7))))
def test_the_thinker_refuses_bad_ids_tokens_and_labels(text_ids, image_tokens):
    assert_rejects(THINKER, "text_ids", text_ids)
    assert_rejects(THINKER.embed, "image_tokens", IDS, image_tokens)
    assert_rejects(THINKER.hidden_states, "audio_tokens", IDS, None, torch.zeros(2, 1, 4))
    assert_rejects(THINKER.loss, "labels", IDS, IDS.float())
    assert_rejects(THINKER.loss, "text_ids", text_ids, IDS)
    assert_rejects(THINKER, "max_len", torch.zeros(1, 17, dtype=torch.long))
    fresh = Thinker(VOCAB, dim=8, depth=1, num_heads=2)
    assert_rejects(fresh.attention_weights, "forward")  # nothing has run yet


@covers(Thinker.embed, Thinker.hidden_states, Thinker.forward, Thinker.loss,
        Thinker.attention_weights)
@given(float_tensors((2, 1, 6)), float_tensors((2, 3, 5)))
def test_the_thinker_takes_any_subset_in_float64_and_numpy(image, audio):
    with torch.no_grad():
        got = THINKER(IDS, image, audio)
        assert_close_to_float32(got, THINKER(IDS, as_float32(image), as_float32(audio)))
        assert got.shape == (2, 1 + 3 + 3, VOCAB)
        assert THINKER(None, image).shape == (2, 1, VOCAB)  # image only
        assert THINKER(IDS[:1]).shape == (1, 3, VOCAB)  # text only, batch 1
        assert THINKER.attention_weights().shape == (1, 1, 2, 3, 3)
        labels = IDS.masked_fill(IDS == MARKER, -100)
        assert torch.isfinite(THINKER.loss(IDS, labels, image, audio))
