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

from course_lib.architectures.llava import instruction_labels
from course_lib.data.digits_av import CAPTION_TEMPLATES, DIGIT_NAMES
from course_lib.text import BPETokenizer

__all__ = ["DESCRIBE", "QUESTIONS", "answer_text", "chat_corpus", "Chats", "build_chats",
           "in_words", "prompt_ids", "decoded_answers"]

DESCRIBE = "Describe the image briefly."
QUESTIONS = ("What digit is this?", "Is the digit odd?")


def answer_text(question_index: int, label: int) -> str:
    """The expected answer: the digit's name (question 0) or "yes"/"no" (question 1)."""
    if question_index not in (0, 1):
        raise ValueError(f"question_index must be 0 ({QUESTIONS[0]!r}) or 1 "
                         f"({QUESTIONS[1]!r}), got {question_index!r}")
    if isinstance(label, bool) or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label!r}")
    return DIGIT_NAMES[int(label)] if question_index == 0 else ("yes" if int(label) % 2 else "no")


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

    def __len__(self) -> int:
        return len(self.input_ids)


def prompt_ids(tokenizer: BPETokenizer, prompt: str, image_id: int) -> list[int]:
    """The user turn up to the assistant's answer: ``USER:<image> {prompt} ASSISTANT:``."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    return tokenizer.encode("USER:") + [image_id] + tokenizer.encode(f" {prompt} ASSISTANT:")


def build_chats(tokenizer: BPETokenizer, prompts: Sequence[str], answers: Sequence[str],
                image_id: int, eos_id: int) -> Chats:
    """One conversation per (prompt, answer) pair, each holding one ``<image>`` placeholder."""
    if len(prompts) != len(answers) or not len(prompts):
        raise ValueError(f"prompts and answers must be two non-empty lists of the same length, "
                         f"got {len(prompts)} and {len(answers)}")
    rows, starts = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        user = prompt_ids(tokenizer, prompt, image_id)
        rows.append(user + tokenizer.encode(f" {answer}") + [eos_id])
        starts.append(len(user))
    length = max(map(len, rows))
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
    if not isinstance(word_ids, Tensor) or word_ids.shape != (len(chats),):
        raise ValueError(f"word_ids must hold one id per conversation ({len(chats)},), got "
                         f"{getattr(word_ids, 'shape', word_ids)}")
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
    if not isinstance(generated, Tensor) or generated.dim() != 2:
        raise ValueError(f"generated must have shape (N, G), got "
                         f"{getattr(generated, 'shape', generated)}")
    answers = []
    for row in generated.tolist():
        row = row[:row.index(eos_id)] if eos_id in row else row
        answers.append(tokenizer.decode(row).strip())
    return answers
