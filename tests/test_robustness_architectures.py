"""Robustness of course_lib.architectures: a wrong token width is refused by name before any
norm sees it, float64 and numpy tokens give the float32 answer, ids and labels are checked."""

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
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
)
from torch import nn

from course_lib.architectures.decoder import (
    DecoderLM,
    LlamaBlock,
    apply_rotary,
    next_token_loss,
    scored_next_token_loss,
)
from course_lib.architectures.flamingo import PerceiverResampler
from course_lib.architectures.llava import LlavaProjector
from course_lib.architectures.unified import Thinker

torch.manual_seed(0)
BLOCK = LlamaBlock(8, 2, 16).eval()
LM = DecoderLM(11, 8, 1, 2, 16).eval()
RESAMPLER = PerceiverResampler(8, num_latents=3, depth=1, num_heads=2).eval()
PROJECTOR = LlavaProjector(6, 8).eval()
THINKER = Thinker(11, dim=8, depth=1, num_heads=2, image_dim=6, audio_dim=5).eval()


# ----------------------------------------------------------------------------- the example
@covers(LlamaBlock, LlamaBlock.forward, DecoderLM.hidden_states, DecoderLM.forward_embeddings)
@given(st.integers(1, 7).filter(lambda w: w != 8) | st.integers(9, 40))
def test_a_wrong_token_width_is_refused_by_name_before_rmsnorm(width):
    # Before: RMSNorm raised "Given normalized_shape=[8], expected input with shape [*, 8]".
    error = assert_rejects(BLOCK, "tokens", torch.zeros(1, 3, width))
    assert "width" in str(error)
    assert_rejects(LM.hidden_states, "embeddings", torch.zeros(1, 3, width))
    assert_rejects(LM.forward_embeddings, "embeddings", torch.zeros(1, 3, width))


@covers(LlamaBlock.forward, DecoderLM.hidden_states, DecoderLM.forward_embeddings,
        PerceiverResampler.forward, LlavaProjector.forward, Thinker.forward)
@given(float_tensors((2, 3, 8)), float_tensors((2, 4, 6)), float_tensors((2, 2, 5)))
def test_float64_numpy_and_strided_tokens_give_the_float32_answer(tokens, image, audio):
    # Before: float64 tokens failed inside a matmul ("mat1 and mat2 must have the same dtype").
    with torch.no_grad():
        for model, value in ((BLOCK, tokens), (LM.hidden_states, tokens),
                             (RESAMPLER, tokens), (PROJECTOR, image)):
            assert_close_to_float32(model(value), model(as_float32(value)))
        got = THINKER(torch.tensor([[1, 2]] * 2), image_tokens=image, audio_tokens=audio)
        expected = THINKER(torch.tensor([[1, 2]] * 2), image_tokens=as_float32(image),
                           audio_tokens=as_float32(audio))
        assert_close_to_float32(got, expected)


@covers(LlamaBlock.forward, DecoderLM.hidden_states, PerceiverResampler.forward,
        LlavaProjector.forward)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 3, 8), NOT_FLOAT),
                 st.just(torch.zeros(3, 8)), st.just(torch.zeros(1, 1, 3, 8))))
def test_token_inputs_must_be_float_3d_tensors(tokens):
    assert_rejects(BLOCK, "tokens", tokens)
    assert_rejects(LM.hidden_states, "embeddings", tokens)
    assert_rejects(RESAMPLER, "media", tokens)


@covers(LlamaBlock.forward, DecoderLM.hidden_states)
@given(st.sampled_from(["dtype", "shape", "kind"]))
def test_padding_masks_are_checked(damage):
    mask = {"dtype": torch.ones(1, 3), "shape": torch.ones(1, 4, dtype=torch.bool),
            "kind": [[True] * 3]}[damage]
    assert_rejects(BLOCK, "padding_mask", torch.zeros(1, 3, 8), mask)
    assert_rejects(LM.hidden_states, "padding_mask", torch.zeros(1, 3, 8), mask)


# ----------------------------------------------------------------------------- ids and losses
@covers(DecoderLM, DecoderLM.embed, DecoderLM.forward)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 3), NOT_INT), st.just(torch.tensor([1])),
                 st.just(torch.tensor([[11]])), st.just(torch.tensor([[-1]]))))
def test_decoder_ids_are_checked(input_ids):
    assert_rejects(LM, "input_ids", input_ids)
    assert_rejects(LM.embed, "input_ids", input_ids)
    assert LM(torch.tensor([[0, 10]])).shape == (1, 2, 11)
    assert LM(torch.zeros(0, 2, dtype=torch.long)).shape == (0, 2, 11)  # an empty batch
    assert_rejects(DecoderLM, "vocab_size", 0, 8, 1, 2, 16)


@covers(next_token_loss, scored_next_token_loss)
@given(st.integers(1, 3), st.integers(2, 5), st.integers(0, 99))
def test_losses_match_cross_entropy_and_check_their_arguments(batch, length, seed):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, 8, generator=generator)
    labels = torch.randint(11, (batch, length), generator=generator)
    logits = LM.head(hidden)
    expected = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11),
                                           labels[:, 1:].reshape(-1))
    torch.testing.assert_close(next_token_loss(logits, labels), expected)
    torch.testing.assert_close(scored_next_token_loss(hidden.double(), LM.head, labels),
                               expected, rtol=1e-4, atol=1e-5)
    assert_rejects(next_token_loss, "labels", logits, labels.float())
    assert_rejects(next_token_loss, "logits", logits[0], labels)
    assert_rejects(scored_next_token_loss, "head", hidden, "head", labels)
    assert_rejects(scored_next_token_loss, "hidden", hidden[..., :3], LM.head, labels)
    assert_rejects(next_token_loss, "labels", logits, torch.full_like(labels, -100))


@covers(apply_rotary)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((1, 2, 4), NOT_FLOAT),
                 st.just(torch.zeros(3)), st.just(torch.zeros(1, 2, 3))),
       st.one_of(not_a_number(), st.floats(-5, 1)))
def test_apply_rotary_checks_tokens_and_base(tokens, base):
    assert_rejects(apply_rotary, "tokens", tokens)
    assert_rejects(apply_rotary, "base", torch.zeros(1, 2, 4), base)
    x = torch.randn(1, 2, 3, 4)
    rotated = apply_rotary(x)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))  # a rotation keeps norms
    torch.testing.assert_close(rotated[..., 0, :], x[..., 0, :])  # position 0: angle 0
