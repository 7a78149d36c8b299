"""Robustness of the architectures' parts: the patch codebook, the digit conversations, sizing,
the tanh gates and the training recipes.

Every public name gets generated wrong arguments (wrong kinds, ranks, dtypes, NaN, sizes out
of range, huge sizes that would allocate or loop) that must be refused by name within a
second, and valid edge inputs (batch 1, float64, numpy, non-contiguous) that must work and
agree with the float32 answer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
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
    GatedCrossAttentionBlock,
    LlavaLikeModel,
    PatchCodebook,
    count_on_meta,
    count_parameters,
    instruction_labels,
    kmeans,
    pretrain_language_model,
    sequence_lengths,
    set_trainable,
    train_flamingo,
    train_llava_stage,
    train_on,
)
from course_lib.architectures.digit_chat import (
    QUESTIONS,
    Chats,
    answer_text,
    build_chats,
    chat_corpus,
    decoded_answers,
    in_words,
    prompt_ids,
)
from course_lib.architectures.gates import (
    GateFlow,
    GateSweep,
    cross_attention_update,
    gate_flow,
    gate_sweep,
)
from course_lib.architectures.sizing import ModelSize
from course_lib.data.digits_av import DIGIT_NAMES
from course_lib.text import BPETokenizer

torch.manual_seed(0)
TOKENIZER = BPETokenizer().train(chat_corpus(), vocab_size=300)
IMAGE_ID, EOS_ID = TOKENIZER.vocab_size, TOKENIZER.vocab_size + 1
CHATS = build_chats(TOKENIZER, [QUESTIONS[0], QUESTIONS[1]], ["seven", "yes"], IMAGE_ID, EOS_ID)
POINTS = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
IMAGES = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(2))
CODEBOOK = PatchCodebook.fit(IMAGES, num_codes=4, patch_size=2, text_vocab_size=10)
BLOCK = GatedCrossAttentionBlock(8, 2, kv_dim=6).eval()


# ----------------------------------------------------------------------------- codebook
@covers(kmeans)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((5, 2), NOT_FLOAT), st.just(torch.zeros(5)),
                 st.just(torch.zeros(0, 2)), st.just(torch.full((5, 2), float("nan")))),
       bad_int(1), bad_int(1, 10**6))
def test_kmeans_refuses_bad_points_and_sizes(points, num_clusters, iterations):
    assert_rejects(kmeans, "points", points, 2)
    assert_rejects(kmeans, "num_clusters", POINTS, num_clusters)
    assert_rejects(kmeans, "iterations", POINTS, 2, iterations)
    assert_rejects(kmeans, "initial_centroids", POINTS, 2, initial_centroids=torch.zeros(3, 4))


@covers(kmeans)
@given(float_tensors((30, 4)), st.integers(1, 5), st.integers(0, 99))
def test_kmeans_assigns_every_point_to_its_nearest_centroid(points, k, seed):
    centroids, assignments = kmeans(points, k, seed=seed)
    points = torch.as_tensor(points)
    assert centroids.shape == (k, 4) and assignments.shape == (30,)
    nearest = torch.cdist(points, centroids).argmin(dim=1)  # the definition, recomputed
    assert torch.equal(assignments, nearest)
    assert kmeans(points[:1], 1)[0].shape == (1, 4)  # one point


@covers(PatchCodebook, PatchCodebook.fit, PatchCodebook.encode, PatchCodebook.decode)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 1, 4, 4), NOT_FLOAT),
                 st.just(torch.zeros(1, 3, 4, 4)), st.just(torch.zeros(1, 4, 4))),
       st.one_of(not_a_tensor(), tensor_of_dtype((1, 4), NOT_INT), st.just(torch.tensor([[0]])),
                 st.just(torch.tensor([[14]])), st.just(torch.zeros(4, dtype=torch.long))))
def test_the_codebook_refuses_bad_images_and_ids(images, ids):
    assert_rejects(CODEBOOK.encode, "images", images)
    assert_rejects(CODEBOOK.decode, "ids", ids)
    assert_rejects(CODEBOOK.decode, "grid", torch.full((1, 4), 10), grid="2x2")
    assert_rejects(CODEBOOK.decode, "grid", torch.full((1, 4), 10), grid=(4, 4))
    assert_rejects(PatchCodebook.fit, "images", images if not isinstance(images, torch.Tensor)
                   or images.dim() != 4 else torch.zeros(0, 1, 4, 4), 2, 2, 10)
    assert_rejects(PatchCodebook.fit, "num_codes", IMAGES, 0, 2, 10)
    assert_rejects(PatchCodebook, "centroids", torch.zeros(3, 5), 2, 10)
    assert_rejects(PatchCodebook, "text_vocab_size", torch.zeros(3, 4), 2, -1)
    assert_rejects(PatchCodebook, "patch_size", torch.zeros(3, 4), 2.0, 10)


@covers(PatchCodebook.encode, PatchCodebook.decode)
@given(float_tensors((1, 1, 4, 4)))
def test_codebook_ids_are_the_nearest_code_and_decode_back_to_it(image):
    ids = CODEBOOK.encode(image)
    assert torch.equal(ids, CODEBOOK.encode(as_float32(image)))
    patches = as_float32(image).reshape(1, 2, 2, 2, 2).permute(0, 1, 3, 2, 4).reshape(4, 4)
    nearest = torch.cdist(patches, CODEBOOK.centroids).argmin(dim=1) + 10  # by hand
    assert torch.equal(ids[0], nearest)
    rebuilt = CODEBOOK.decode(ids)
    assert torch.equal(CODEBOOK.encode(rebuilt), ids)  # decoding lands on the same codes


# ----------------------------------------------------------------------------- digit chats
@covers(answer_text)
@given(st.one_of(bad_int(0, 1), st.sampled_from(["0", 0.0, None, 2, -1])),
       st.one_of(bad_int(0, 9), st.sampled_from(["seven", "7", None, 7.0, 10, -1])))
def test_answer_text_refuses_what_is_not_a_question_or_a_digit(question_index, label):
    # Before: answer_text(0, "seven") raised "invalid literal for int()", naming nothing.
    assert_rejects(answer_text, "question_index", question_index, 3)
    assert_rejects(answer_text, "label", 0, label)


@covers(answer_text)
@given(st.integers(0, 9), st.sampled_from([int, np.int64, torch.tensor]))
def test_answer_text_names_the_digit_and_its_parity(label, kind):
    assert answer_text(0, kind(label)) == DIGIT_NAMES[label]
    assert answer_text(1, kind(label)) == ("yes" if label in (1, 3, 5, 7, 9) else "no")


@covers(prompt_ids, chat_corpus)
@given(st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=2), max_size=2)),
       bad_int(0))
def test_prompt_ids_refuses_bad_prompts_tokenizers_and_ids(prompt, image_id):
    # Before: prompt_ids("not a tokenizer", ...) crashed with AttributeError.
    assert_rejects(prompt_ids, "prompt", TOKENIZER, prompt, IMAGE_ID)
    assert_rejects(prompt_ids, "image_id", TOKENIZER, "What?", image_id)
    assert_rejects(prompt_ids, "tokenizer", "tokenizer", "What?", IMAGE_ID)
    ids = prompt_ids(TOKENIZER, QUESTIONS[0], IMAGE_ID)
    assert ids.count(IMAGE_ID) == 1
    assert TOKENIZER.decode([i for i in ids if i != IMAGE_ID]) == f"USER: {QUESTIONS[0]} ASSISTANT:"
    assert len(chat_corpus()) == len(set(chat_corpus()))


@covers(build_chats, Chats)
@given(st.sampled_from(["prompts", "answers", "image_id", "eos_id", "lengths", "item"]))
def test_build_chats_refuses_bad_lists_and_ids(damage):
    args = {"prompts": [QUESTIONS[0]], "answers": ["seven"], "image_id": IMAGE_ID,
            "eos_id": EOS_ID}
    bad = {"prompts": ("prompts", "What digit?"), "answers": ("answers", torch.zeros(1)),
           "image_id": ("image_id", -1), "eos_id": ("eos_id", 2.0),
           "lengths": ("answers", ["seven", "eight"]), "item": ("prompts", [3])}[damage]
    args[bad[0]] = bad[1]
    name = "prompts" if damage == "item" else bad[0]
    assert_rejects(build_chats, name if damage != "lengths" else "answers", TOKENIZER,
                   args["prompts"], args["answers"], args["image_id"], args["eos_id"])
    assert_rejects(Chats, "labels", CHATS.input_ids, CHATS.labels[:1], CHATS.attention_mask,
                   CHATS.answer_starts)
    assert_rejects(Chats, "attention_mask", CHATS.input_ids, CHATS.labels,
                   CHATS.attention_mask.long(), CHATS.answer_starts)


@covers(build_chats, Chats)
def test_one_conversation_supervises_only_its_answer():
    chats = build_chats(TOKENIZER, [QUESTIONS[1]], ["no"], IMAGE_ID, EOS_ID)  # batch 1
    scored = chats.labels[chats.labels != -100].tolist()
    assert TOKENIZER.decode(scored[:-1]) == " no" and scored[-1] == EOS_ID
    assert len(chats) == 1 and int(chats.answer_starts[0]) == len(
        prompt_ids(TOKENIZER, QUESTIONS[1], IMAGE_ID))


@covers(in_words)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((2,), NOT_INT), st.just(torch.tensor([1])),
                 st.just(torch.tensor([[1, 2]])), st.just(torch.tensor([-1, 2]))))
def test_in_words_refuses_bad_word_ids_and_chats(word_ids):
    # Before: in_words with a dict for chats crashed with TypeError from len() of a dict.
    assert_rejects(in_words, "word_ids", CHATS, IMAGE_ID, word_ids)
    assert_rejects(in_words, "chats", {"input_ids": CHATS.input_ids}, IMAGE_ID,
                   torch.tensor([1, 2]))
    assert_rejects(in_words, "image_id", CHATS, "image", torch.tensor([1, 2]))
    words = in_words(CHATS, IMAGE_ID, np.array([5, 6]))  # numpy ids are converted
    assert words.input_ids[0].tolist().count(5) >= 1 and IMAGE_ID not in words.input_ids


@covers(decoded_answers)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 3), NOT_INT),
                 st.just(torch.tensor([1, 2])), st.just(torch.tensor([[10**6]]))),
       st.one_of(bad_int(0), st.just(-5)))
def test_decoded_answers_refuses_bad_ids(generated, eos_id):
    assert_rejects(decoded_answers, "generated", TOKENIZER, generated, EOS_ID)
    assert_rejects(decoded_answers, "eos_id", TOKENIZER, torch.tensor([[1]]), eos_id)
    assert_rejects(decoded_answers, "tokenizer", None, torch.tensor([[1]]), EOS_ID)
    seven = TOKENIZER.encode(" seven")
    assert decoded_answers(TOKENIZER, torch.tensor([seven + [EOS_ID, 3]]), EOS_ID) == ["seven"]
    assert decoded_answers(TOKENIZER, torch.zeros(0, 2, dtype=torch.long), EOS_ID) == []


# ----------------------------------------------------------------------------- sizing
@covers(ModelSize, ModelSize.weight_bytes, ModelSize.training_bytes, count_on_meta)
@given(st.integers(1, 64), st.integers(1, 64))
def test_sizes_are_the_hand_counts_without_allocating(width_in, width_out):
    size = count_on_meta(lambda: nn.Linear(width_in, width_out))
    assert size.parameters == width_in * width_out + width_out
    assert size.weight_bytes(torch.float32) == 4 * size.parameters
    assert size.training_bytes() == 16 * size.parameters
    assert_rejects(size.weight_bytes, "dtype", "float16")
    assert_rejects(ModelSize, "parameters", -1, {})
    assert_rejects(ModelSize, "by_part", 3, [("a", 3)])
    assert_rejects(count_on_meta, "build", nn.Linear(2, 2))
    assert_rejects(count_on_meta, "build", lambda: "not a model")


@covers(count_on_meta, ModelSize)
def test_a_model_too_big_to_allocate_is_counted_on_meta():
    # Two LLaMA-7B layers with its vocabulary: 0.67 billion weights, ten times the course's
    # allocation limit, counted without their memory.
    big = count_on_meta(lambda: DecoderLM(32000, 4096, 2, 32, 11008))
    # embedding + head 2 V d, per layer 4 d^2 + 3 d f + 2 d, the final norm d
    assert big.parameters == 2 * 32000 * 4096 + 2 * (4 * 4096**2 + 3 * 4096 * 11008
                                                      + 2 * 4096) + 4096
    assert_rejects(DecoderLM, "vocab_size * dim", 32000, 4096, 2, 32, 11008)  # off meta


@covers(set_trainable, sequence_lengths)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=2), st.just([nn.Linear(2, 2)])),
       bad_int(0))
def test_set_trainable_and_sequence_lengths_check_their_arguments(trainable, count):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert_rejects(set_trainable, "trainable", model, trainable)
    assert_rejects(set_trainable, "model", "model", [])
    assert set_trainable(model, model[1]) == 4 * 2 + 2  # one module, not a list: the same
    assert count_parameters(model, trainable_only=True) == 10
    assert_rejects(sequence_lengths, "text_tokens", count, 1, 576)
    assert_rejects(sequence_lengths, "num_images", 50, count, 576)
    assert_rejects(sequence_lengths, "tokens_per_image", 50, 1, count)
    assert sequence_lengths(50, 1, 576) == {"llava": 626, "flamingo": 50}


# ----------------------------------------------------------------------------- gates
@covers(gate_flow, GateFlow)
@given(not_a_number(),
       st.one_of(not_a_tensor(), tensor_of_dtype((3,), NOT_FLOAT), st.just(torch.zeros(1, 3)),
                 st.just(torch.tensor([1.0, float("nan"), 0.0]))))
def test_gate_flow_refuses_bad_alphas_and_vectors(alpha, vector):
    assert_rejects(gate_flow, "alpha", alpha, torch.ones(3), torch.ones(3))
    assert_rejects(gate_flow, "hidden", 1.0, vector, torch.ones(3))
    assert_rejects(gate_flow, "update", 1.0, torch.ones(3), vector)


@covers(gate_flow, GateFlow)
@given(st.floats(-5, 5), float_tensors((6,)), float_tensors((6,)))
def test_gate_flow_is_the_tanh_residual(alpha, hidden, update):
    flow = gate_flow(alpha, hidden, update)
    hidden, update = torch.as_tensor(hidden), torch.as_tensor(update)
    torch.testing.assert_close(flow.output, hidden + math.tanh(alpha) * update)
    assert flow.gate == math.tanh(alpha)


@covers(cross_attention_update)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 2, 8), NOT_FLOAT),
                 st.just(torch.zeros(1, 2, 7)), st.just(torch.zeros(2, 8))),
       float_tensors((2, 3, 8)), float_tensors((2, 4, 6)))
def test_cross_attention_update_checks_widths_before_the_norm(hidden, good, media):
    # Before: a wrong width reached LayerNorm ("Given normalized_shape=[8]").
    assert_rejects(cross_attention_update, "hidden", BLOCK, hidden, torch.zeros(1, 4, 6))
    assert_rejects(cross_attention_update, "media", BLOCK, torch.zeros(1, 2, 8),
                   torch.zeros(1, 4, 5))
    assert_rejects(cross_attention_update, "block", nn.Linear(8, 8), torch.zeros(1, 2, 8),
                   torch.zeros(1, 4, 6))
    with torch.no_grad():
        assert_close_to_float32(cross_attention_update(BLOCK, good, media),
                                cross_attention_update(BLOCK, as_float32(good), as_float32(media)))


def _flamingo() -> FlamingoLikeModel:
    torch.manual_seed(0)
    lm = DecoderLM(12, 8, 1, 2, 16)
    return FlamingoLikeModel(None, 6, lm, num_latents=2, resampler_depth=1, num_heads=2,
                             media_token_id=11).eval()


FLAMINGO = _flamingo()
PROMPTS = torch.tensor([[11, 3, 4], [11, 5, 6]])


@covers(gate_sweep, GateSweep, GateSweep.index)
@given(st.sampled_from(["model", "prompt_ids", "answer_ids", "candidate_ids", "candidates",
                        "example", "scales"]))
def test_gate_sweep_refuses_each_bad_argument(name):
    args = {"model": FLAMINGO, "media": torch.randn(2, 3, 6), "prompt_ids": PROMPTS,
            "answer_ids": torch.tensor([1, 2]), "candidate_ids": torch.tensor([1, 2]),
            "candidates": ("one", "two"), "example": 0, "scales": None}
    args[name] = {"model": nn.Linear(2, 2), "prompt_ids": PROMPTS.float(),
                  "answer_ids": torch.tensor([1]), "candidate_ids": torch.tensor([1, 99]),
                  "candidates": "one", "example": 2,
                  "scales": torch.tensor([0.0, float("nan")])}[name]
    assert_rejects(gate_sweep, name, **args)


@covers(gate_sweep, GateSweep, GateSweep.index)
@given(not_a_number())
def test_a_sweep_at_scale_zero_is_the_language_model_alone(scale):
    sweep = gate_sweep(FLAMINGO, torch.randn(2, 3, 6).double(), PROMPTS, torch.tensor([1, 2]),
                       torch.tensor([1, 2]), ("one", "two"), scales=np.array([0.0, 1.0]))
    alone = FLAMINGO.language_model(PROMPTS)[:, -1]
    expected = (alone.argmax(dim=-1) == torch.tensor([1, 2])).float().mean()
    torch.testing.assert_close(sweep.accuracy[0], expected)
    assert sweep.index(0.9) == 1
    assert_rejects(sweep.index, "scale", scale)
    assert_rejects(GateSweep, "probabilities", sweep.scales, sweep.attention_alphas,
                   sweep.accuracy, sweep.probabilities[:1], sweep.candidates, "one")


# ----------------------------------------------------------------------------- training recipes
def _llava() -> LlavaLikeModel:
    torch.manual_seed(0)
    return LlavaLikeModel(None, 6, DecoderLM(12, 8, 1, 2, 16), image_token_id=11)


@covers(train_on, pretrain_language_model, train_llava_stage, train_flamingo)
@given(st.sampled_from(["one tensor", "device", "unavailable", "loss", "rows", "float ids"]))
def test_the_recipes_refuse_bad_tensors_and_devices(damage):
    ids = torch.tensor([[1, 11, 2, 3]] * 4)
    labels = instruction_labels(ids, [2] * 4)
    model = _llava()
    if damage == "one tensor":  # before: its rows were trained on as aligned tensors
        assert_rejects(train_on, "tensors", model, lambda b: b[0].sum(), ids, device="cpu",
                       epochs=1)
    elif damage == "device":
        assert_rejects(train_on, "device", model, lambda b: b[0].sum(), [ids], device=3.5,
                       epochs=1)
    elif damage == "unavailable":
        device = "mps" if torch.cuda.is_available() else "cuda:0"
        if torch.backends.mps.is_available():
            pytest.skip("this machine has both CUDA and MPS devices")
        assert_rejects(train_on, "device", model, lambda b: b[0].sum(), [ids], device=device,
                       epochs=1)
    elif damage == "loss":
        assert_rejects(train_on, "loss_of_batch", model, "loss", [ids], device="cpu", epochs=1)
    elif damage == "rows":
        assert_rejects(train_llava_stage, "images", model, 1, torch.randn(3, 2, 6), ids, labels,
                       device="cpu", epochs=1)
        assert_rejects(train_flamingo, "media", FLAMINGO, torch.randn(3, 2, 6), ids, labels,
                       device="cpu", epochs=1)
    else:
        assert_rejects(pretrain_language_model, "input_ids", model.language_model, ids.float(),
                       labels, device="cpu", epochs=1)
        assert_rejects(train_llava_stage, "labels", model, 1, torch.randn(4, 2, 6), ids,
                       labels.float(), device="cpu", epochs=1)


@covers(train_on, pretrain_language_model, train_llava_stage, train_flamingo)
def test_one_epoch_of_each_recipe_lowers_nothing_it_should_not_train():
    ids = torch.tensor([[1, 11, 2, 3]] * 4)
    labels = instruction_labels(ids, [2] * 4)
    model = _llava()
    before = model.language_model.token_embedding.weight.clone()
    history = train_llava_stage(model, 1, torch.randn(4, 2, 6).double(), ids, labels,
                                device="cpu", epochs=1, batch_size=2, progress=False)
    assert len(history.losses) == 2 and all(math.isfinite(v) for v in history.losses)
    assert torch.equal(model.language_model.token_embedding.weight, before)  # LM frozen
    lm = DecoderLM(12, 8, 1, 2, 16)
    assert len(pretrain_language_model(lm, ids, ids, device="cpu", epochs=1, batch_size=4,
                                       progress=False).losses) == 1
    flamingo = _flamingo()
    history = train_flamingo(flamingo, torch.randn(4, 2, 6), ids.masked_fill(ids == 11, 11),
                             flamingo.labels(ids), device="cpu", epochs=1, batch_size=4,
                             progress=False)
    assert "attention gate 1" in history.logs
