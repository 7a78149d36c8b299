"""The conversations the chapter's language models learn from: digits described and asked about.

A conversation is ``USER:<image> {prompt} ASSISTANT: {answer}<EOS>``, LLaVA's layout: the
``<image>`` placeholder (or Flamingo's marker) sits in the user turn, the assistant's answer
follows, and only the answer is supervised (``llava.instruction_labels``). Two kinds of
conversation, as in LLaVA's two stages:

- **captions** (stage 1, feature alignment): "Describe the image briefly." -> the caption that
  :func:`course_lib.data.load_digits_av` ships ("a handwritten seven", "the number 7", ...);
- **questions** (stage 2, instruction tuning): "What digit is this?" -> "seven",
  "Is the digit odd?" -> "yes" / "no".

:func:`in_words` writes the same conversations with the digit's *name* where the image was:
the text a language model can be pretrained on before it ever sees an image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib._validation import (
    ArgumentTypeError,
    check_allocation,
    check_int,
    check_sequence,
    check_tensor,
    check_text,
    describe,
)
from course_lib.architectures._checks import _check_id, _check_ids
from course_lib.architectures.llava import instruction_labels
from course_lib.data.digits_av import CAPTION_TEMPLATES, DIGIT_NAMES
from course_lib.text import BPETokenizer

__all__ = ["DESCRIBE", "QUESTIONS", "answer_text", "chat_corpus", "Chats", "build_chats",
           "in_words", "prompt_ids", "decoded_answers"]

DESCRIBE = "Describe the image briefly."
QUESTIONS = ("What digit is this?", "Is the digit odd?")


def answer_text(question_index: int, label: int) -> str:
    """The expected answer: the digit's name (question 0) or "yes"/"no" (question 1)."""
    question_index = check_int("question_index", question_index)
    if question_index not in (0, 1):
        raise ValueError(f"question_index must be 0 ({QUESTIONS[0]!r}) or 1 "
                         f"({QUESTIONS[1]!r}), got {question_index!r}")
    if isinstance(label, Tensor):
        if label.numel() != 1:
            raise ValueError(f"label must be one digit, got {describe(label)}")
        label = label.item()
    label = check_int("label", label, minimum=0, maximum=9)
    return DIGIT_NAMES[label] if question_index == 0 else ("yes" if label % 2 else "no")


def chat_corpus() -> list[str]:
    """Every conversation text with the image left out: what a tokenizer is trained on."""
    answers = [*DIGIT_NAMES, "yes", "no"]
    corpus = [f"USER: {q} ASSISTANT: {a}" for q in QUESTIONS for a in answers]
    corpus += [f"USER: {DESCRIBE} ASSISTANT: " + template.format(name=name, digit=digit)
               for template in CAPTION_TEMPLATES for digit, name in enumerate(DIGIT_NAMES)]
    return corpus


@dataclass(frozen=True)
class Chats:
    """Tokenised conversations, padded on the right with ``eos_id``.

    Shape: input_ids, labels (N, T) (labels -100 on the user turn and the padding),
    attention_mask (N, T) bool, answer_starts (N,).
    """

    input_ids: Tensor
    labels: Tensor
    attention_mask: Tensor
    answer_starts: Tensor

    def __post_init__(self) -> None:
        dims: dict = {}
        check_tensor("input_ids", self.input_ids, shape=("N", "T"), kind="int", dims=dims)
        check_tensor("labels", self.labels, shape=("N", "T"), kind="int", dims=dims)
        check_tensor("attention_mask", self.attention_mask, shape=("N", "T"), kind="bool",
                     dims=dims)
        check_tensor("answer_starts", self.answer_starts, shape=("N",), kind="int", dims=dims)

    def __len__(self) -> int:
        return len(self.input_ids)


def prompt_ids(tokenizer: BPETokenizer, prompt: str, image_id: int) -> list[int]:
    """The user turn up to the assistant's answer: ``USER:<image> {prompt} ASSISTANT:``."""
    _check_tokenizer(tokenizer)
    prompt = check_text("prompt", prompt)
    image_id = _check_id("image_id", image_id)
    return tokenizer.encode("USER:") + [image_id] + tokenizer.encode(f" {prompt} ASSISTANT:")


def _check_tokenizer(tokenizer: object) -> BPETokenizer:
    if not isinstance(tokenizer, BPETokenizer):
        raise ArgumentTypeError(f"tokenizer must be a trained course_lib.text.BPETokenizer, got "
                                f"{describe(tokenizer)}")
    return tokenizer


def build_chats(tokenizer: BPETokenizer, prompts: Sequence[str], answers: Sequence[str],
                image_id: int, eos_id: int) -> Chats:
    """One conversation per (prompt, answer) pair, each holding one ``<image>`` placeholder."""
    _check_tokenizer(tokenizer)
    prompts = check_sequence("prompts", prompts, of="strings")
    answers = check_sequence("answers", answers, of="strings")
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"prompts and answers must be two non-empty lists of the same length, "
                         f"got {len(prompts)} and {len(answers)}")
    for index, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        check_text(f"prompts[{index}]", prompt)
        check_text(f"answers[{index}]", answer)
    image_id = _check_id("image_id", image_id)
    eos_id = _check_id("eos_id", eos_id)
    rows, starts = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        user = prompt_ids(tokenizer, prompt, image_id)
        rows.append(user + tokenizer.encode(f" {answer}") + [eos_id])
        starts.append(len(user))
    length = max(map(len, rows))
    check_allocation("prompts", len(rows) * length)
    input_ids = torch.full((len(rows), length), eos_id, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = torch.tensor(row)
        attention_mask[i, :len(row)] = True
    answer_starts = torch.tensor(starts)
    labels = instruction_labels(input_ids, answer_starts, attention_mask)
    return Chats(input_ids, labels, attention_mask, answer_starts)


def in_words(chats: Chats, image_id: int, word_ids: Tensor) -> Chats:
    """The same conversations with one word in place of each image: row n's ``<image>`` id
    becomes ``word_ids[n]`` (e.g. the id of " seven"). Shape: word_ids (N,)."""
    if not isinstance(chats, Chats):
        raise ArgumentTypeError(f"chats must be the Chats that build_chats returns, got "
                                f"{describe(chats)}")
    image_id = _check_id("image_id", image_id)
    word_ids = check_tensor("word_ids", word_ids, kind="int", ndim=1)
    if word_ids.shape != (len(chats),):
        raise ValueError(f"word_ids must hold one id per conversation ({len(chats)},), got "
                         f"{tuple(word_ids.shape)}")
    if word_ids.numel() and int(word_ids.min()) < 0:
        raise ValueError(f"word_ids must be token ids (>= 0), got {int(word_ids.min())}")
    is_image = chats.input_ids == image_id
    if not bool((is_image.sum(dim=1) == 1).all()):
        raise ValueError(f"every conversation must hold exactly one image id {image_id}")
    words = word_ids[:, None].expand_as(chats.input_ids)
    return Chats(torch.where(is_image, words, chats.input_ids), chats.labels,
                 chats.attention_mask, chats.answer_starts)


def decoded_answers(tokenizer: BPETokenizer, generated: Tensor, eos_id: int) -> list[str]:
    """The generated answers as text, without the leading space, cut at the first ``EOS``.

    Shape: generated (N, G) ids -> N strings.
    """
    _check_tokenizer(tokenizer)
    generated = _check_ids("generated", generated, shape=("N", "G"))
    eos_id = _check_id("eos_id", eos_id)
    answers = []
    for row in generated.tolist():
        row = row[:row.index(eos_id)] if eos_id in row else row
        outside = [i for i in row if not 0 <= i < tokenizer.vocab_size]
        if outside:
            raise ValueError(f"generated holds id {outside[0]} before eos_id {eos_id}, outside "
                             f"the tokenizer's vocabulary [0, {tokenizer.vocab_size})")
        answers.append(tokenizer.decode(row).strip())
    return answers
