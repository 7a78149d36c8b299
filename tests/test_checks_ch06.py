"""Chapter 06's checkers on right answers, stubs, crashes, wrong types, NaN, numpy and mistakes.

The expected splices are built here by hand (torch.cat of text[:p], image, text[p + 1:]) and
compared with the library; the gate's values and gradient come from math.tanh.
"""

import math

import pytest
import torch
from checker_verdicts import stub, verdict_of

from course_lib.architectures import splice_image_tokens
from course_lib.checks import ch06


# ----------------------------------------------------------------------------- exercise 1
def splice_right(text_embeddings, input_ids, image_tokens, image_token_id):
    placeholders = int((input_ids == image_token_id).sum())
    if placeholders != len(image_tokens):
        raise ValueError(f"{placeholders} placeholders but {len(image_tokens)} images")
    rows, image = [], 0
    for row in range(len(input_ids)):
        pieces = []
        for position, token in enumerate(input_ids[row].tolist()):
            if token == image_token_id:
                pieces.append(image_tokens[image])
                image += 1
            else:
                pieces.append(text_embeddings[row, position:position + 1])
        rows.append(torch.cat(pieces))
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def test_the_hand_splice_is_the_librarys():
    for case in ch06.SPLICE_CASES:
        text, ids, images = ch06._splice_case(*case, seed=0)
        torch.testing.assert_close(splice_right(text, ids, images, ch06.IMAGE_ID),
                                   splice_image_tokens(text, ids, images, ch06.IMAGE_ID).embeddings)
    text, ids, images = ch06._splice_case([[1, ch06.IMAGE_ID, 2]], 3, seed=0)
    by_hand = torch.cat([text[0, :1], images[0], text[0, 2:]])
    torch.testing.assert_close(splice_right(text, ids, images, ch06.IMAGE_ID)[0], by_hand)


def keeps_placeholder(text_embeddings, input_ids, image_tokens, image_token_id):
    splice_right(text_embeddings, input_ids, image_tokens, image_token_id)  # the count check
    return ch06._variant(text_embeddings, input_ids, image_tokens, "placeholder kept before")


def drops_next(text_embeddings, input_ids, image_tokens, image_token_id):
    splice_right(text_embeddings, input_ids, image_tokens, image_token_id)
    return ch06._variant(text_embeddings, input_ids, image_tokens, "drops the next token")


def off_by_one_before(text_embeddings, input_ids, image_tokens, image_token_id):
    """cat(text[:p - 1], image, text[p + 1:]) in a hand-written loop."""
    rows, image = [], 0
    for row in range(len(input_ids)):
        pieces = []
        for position, token in enumerate(input_ids[row].tolist()):
            if token == image_token_id:
                if pieces:
                    pieces.pop()
                pieces.append(image_tokens[image])
                image += 1
            else:
                pieces.append(text_embeddings[row, position:position + 1])
        rows.append(torch.cat(pieces))
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def reversed_images(text_embeddings, input_ids, image_tokens, image_token_id):
    return splice_right(text_embeddings, input_ids, image_tokens.flip(0), image_token_id)


def no_count_check(text_embeddings, input_ids, image_tokens, image_token_id):
    rows, image = [], 0
    for row in range(len(input_ids)):
        pieces = []
        for position, token in enumerate(input_ids[row].tolist()):
            if token == image_token_id:
                pieces.append(image_tokens[image % len(image_tokens)])
                image += 1
            else:
                pieces.append(text_embeddings[row, position:position + 1])
        rows.append(torch.cat(pieces))
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def left_padded(text_embeddings, input_ids, image_tokens, image_token_id):
    out = splice_right(text_embeddings, input_ids, image_tokens, image_token_id)
    return torch.stack([row.roll(int((row.abs().sum(-1) == 0).sum()), 0) for row in out])


def first_row_only(text_embeddings, input_ids, image_tokens, image_token_id):
    return splice_right(text_embeddings[:1], input_ids[:1],
                        image_tokens[:int((input_ids[0] == image_token_id).sum())],
                        image_token_id)


def calls_library(text_embeddings, input_ids, image_tokens, image_token_id):
    return splice_image_tokens(text_embeddings, input_ids, image_tokens,
                               image_token_id).embeddings


def test_splice_right_answer_passes(capsys):
    verdict_of(ch06.check_splice(splice_right), capsys, True, "refuses a count mismatch",
               "576 + 50 = 626")


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet"]),
    (lambda *args: 1 / 0, ["ZeroDivisionError"]),
    (lambda t, i, im, k: splice_right(t, i, im, k)[:, :-1], ["has shape"]),
    (lambda t, i, im, k: splice_right(t, i, im, k) * float("nan"), ["NaN"]),
    (lambda t, i, im, k: splice_right(t, i, im, k).numpy(), ["a numpy array"]),
    (lambda t, i, im, k: splice_image_tokens(t, i, im, k), ["return the embeddings tensor"]),
    (keeps_placeholder, ["placeholder's own embedding", "N - 1"]),
    (drops_next, ["off by one", "right after the placeholder"]),
    (off_by_one_before, ["off by one", "before the placeholder"]),
    (reversed_images, ["reading order"]),
    (no_count_check, ["should raise ValueError"]),
    (left_padded, ["padded on the right"]),
    (first_row_only, ["has shape"]),
    (calls_library, ["calls splice_image_tokens"]),
])
def test_splice_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch06.check_splice(answer), capsys, False, *phrases)


# ----------------------------------------------------------------------------- exercise 2
def gate_right(x, update, alpha):
    return x + torch.tanh(alpha) * update


def test_the_gate_hand_numbers():
    x, update = torch.ones(3), torch.full((3,), 2.0)
    torch.testing.assert_close(gate_right(x, update, torch.tensor(1.0)),
                               torch.full((3,), 1 + 2 * math.tanh(1.0)))
    assert torch.equal(gate_right(x, update, torch.tensor(0.0)), x)


@pytest.mark.parametrize("answer", [
    gate_right, lambda x, update, alpha: torch.addcmul(x, alpha.tanh(), update),
    lambda x, update, alpha: x + (torch.exp(2 * alpha) - 1) / (torch.exp(2 * alpha) + 1) * update,
])
def test_gate_right_answers_pass(answer, capsys):
    verdict_of(ch06.check_gated_residual(answer), capsys, True, "exactly x at alpha = 0",
               "0.7616")


def in_place_gate(x, update, alpha):
    x += torch.tanh(alpha) * update
    return x


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet"]),
    (lambda x, u, a: [][0], ["IndexError"]),
    (lambda x, u, a: gate_right(x, u, a)[..., :1], ["has shape"]),
    (lambda x, u, a: gate_right(x, u, a) * float("nan"), ["NaN"]),
    (lambda x, u, a: gate_right(x, u, a).detach().numpy(), ["a numpy array"]),
    (lambda x, u, a: x + a * u, ["not alpha itself"]),
    (lambda x, u, a: x + torch.sigmoid(a) * u, ["sigmoid(0) = 0.5"]),
    (lambda x, u, a: x + torch.tanh(a.abs()) * u, ["negative gate"]),
    (lambda x, u, a: x + (torch.sigmoid(a) - 0.5) * u, ["sigmoid(alpha) - 1/2"]),
    (lambda x, u, a: (1 - torch.tanh(a)) * x + torch.tanh(a) * u, ["interpolated"]),
    (lambda x, u, a: torch.tanh(a) * x + u, ["not exactly x"]),
    (lambda x, u, a: x + math.tanh(a.item()) * u, ["no gradient reaches alpha"]),
    (in_place_gate, ["in place"]),
])
def test_gate_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch06.check_gated_residual(answer), capsys, False, *phrases)
