"""Tests of course_lib.architectures.digit_chat: the conversations the chapter trains on."""

from __future__ import annotations

import pytest
import torch

from course_lib.architectures.digit_chat import (
    DESCRIBE,
    QUESTIONS,
    answer_text,
    build_chats,
    chat_corpus,
    decoded_answers,
    in_words,
    prompt_ids,
)
from course_lib.text import BPETokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer().train(chat_corpus(), vocab_size=512)


def test_answers_name_the_digit_or_its_parity():
    assert [answer_text(0, 7), answer_text(1, 7), answer_text(1, 4)] == ["seven", "yes", "no"]
    with pytest.raises(ValueError, match="question_index"):
        answer_text(2, 1)
    with pytest.raises(ValueError, match="label"):
        answer_text(0, 10)


def test_chats_put_the_image_in_the_user_turn_and_supervise_only_the_answer(tokenizer):
    eos, image = tokenizer.vocab_size, tokenizer.vocab_size + 1
    chats = build_chats(tokenizer, [QUESTIONS[0], DESCRIBE], ["seven", "a handwritten seven"],
                        image, eos)
    for row in range(2):
        ids, labels = chats.input_ids[row], chats.labels[row]
        real = ids[chats.attention_mask[row]].tolist()
        assert real.count(image) == 1 and real[-1] == eos
        start = int(chats.answer_starts[row])
        assert tokenizer.decode(ids[:start][ids[:start] != image].tolist()) == (
            f"USER: {[QUESTIONS[0], DESCRIBE][row]} ASSISTANT:")
        supervised = labels[labels != -100].tolist()
        assert supervised[-1] == eos
        assert tokenizer.decode(supervised[:-1]) == [" seven", " a handwritten seven"][row]
    assert chats.labels[0, ~chats.attention_mask[0]].eq(-100).all()  # padding is not scored
    with pytest.raises(ValueError, match="same length"):
        build_chats(tokenizer, [DESCRIBE], [], image, eos)


def test_in_words_swaps_the_image_for_a_word_and_keeps_the_labels(tokenizer):
    eos, image = tokenizer.vocab_size, tokenizer.vocab_size + 1
    chats = build_chats(tokenizer, [QUESTIONS[1]] * 2, ["yes", "no"], image, eos)
    words = torch.tensor([tokenizer.encode(" three")[0], tokenizer.encode(" four")[0]])
    spoken = in_words(chats, image, words)
    assert not (spoken.input_ids == image).any()
    assert tokenizer.decode(spoken.input_ids[0, :chats.answer_starts[0]].tolist()) == (
        "USER: three Is the digit odd? ASSISTANT:")
    assert torch.equal(spoken.labels, chats.labels)
    with pytest.raises(ValueError, match="word_ids"):
        in_words(chats, image, words[:1])


def test_decoded_answers_stop_at_eos(tokenizer):
    eos = tokenizer.vocab_size
    generated = torch.tensor([tokenizer.encode(" seven") + [eos, eos],
                              tokenizer.encode(" no") + [eos, 5]])
    assert decoded_answers(tokenizer, generated, eos) == ["seven", "no"]
    prompt = prompt_ids(tokenizer, "What?", 999)
    assert prompt.count(999) == 1
    assert tokenizer.decode([i for i in prompt if i != 999]) == "USER: What? ASSISTANT:"
    with pytest.raises(ValueError, match="generated"):
        decoded_answers(tokenizer, generated[0], eos)
