"""Chapter 07's checkers on right answers, stubs, crashes, wrong types, NaN, numpy and mistakes.

The expected numbers come from the chapter's hand formulas (frames = 1 + samples // hop,
three ceil(L / 2)) and from torch.stft / nn.Conv1d run here, never from the checker itself.
"""

import math

import numpy as np
import pytest
import torch
from checker_verdicts import stub, verdict_of
from torch import nn

from course_lib.budget import audio_tokens
from course_lib.checks import ch07


# ----------------------------------------------------------------------------- exercise 1
def audio_right(seconds, hop_length=160):
    length = 1 + round(seconds * 16000) // hop_length
    for _ in range(3):
        length = math.ceil(length / 2)
    return length


def audio_by_torch(seconds, hop_length=160):
    """A learner who measures instead of computing: torch.stft and three real convolutions."""
    waveform = torch.zeros(round(seconds * 16000))
    frames = torch.stft(waveform, 400, hop_length, window=torch.hann_window(400),
                        return_complex=True).shape[-1]
    x = torch.zeros(1, 1, frames)
    for _ in range(3):
        x = nn.Conv1d(1, 1, 3, stride=2, padding=1)(x)
    return x.shape[-1]


def test_the_reference_agrees_with_torch_on_the_chapters_numbers():
    assert [audio_by_torch(s) for s in (3, 10)] == [38, 126]
    assert audio_by_torch(3, 256) == 24
    assert all(audio_tokens(s, hop_length=h) == audio_right(s, h) for s, h in ch07.AUDIO_CASES)


@pytest.mark.parametrize("answer", [
    audio_right, audio_by_torch,
    lambda s, h=160: np.int64(audio_right(s, h)),  # a numpy integer
    lambda s, h=160: torch.tensor(audio_right(s, h)),  # a 0-d tensor
    lambda s, h=160: float(audio_right(s, h)),  # 38.0 is still 38
])
def test_audio_right_answers_pass(answer, capsys):
    verdict_of(ch07.check_audio_tokens(answer), capsys, True, "3 s -> 38 tokens",
               "10 s -> 126", "3 s -> 24 at hop 256")


def uncentred(seconds, hop_length=160):
    length = 1 + (round(seconds * 16000) - 400) // hop_length
    for _ in range(3):
        length = math.ceil(length / 2)
    return length


def floored(seconds, hop_length=160):
    length = 1 + round(seconds * 16000) // hop_length
    for _ in range(3):
        length = length // 2
    return length


def no_plus_one(seconds, hop_length=160):
    return math.ceil(round(seconds * 16000) // hop_length / 8)


def hard_coded_hop(seconds, hop_length=160):
    return audio_right(seconds, 160)


def frames_only(seconds, hop_length=160):
    return 1 + round(seconds * 16000) // hop_length


def calls_the_library(seconds, hop_length=160):
    return audio_tokens(seconds, hop_length=hop_length)


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet", "NotImplementedError"]),
    (lambda s, h=160: 1 / 0, ["ZeroDivisionError", "line"]),
    (lambda s, h=160: None, ["should be a number, got NoneType"]),
    (lambda s, h=160: (audio_right(s, h),), ["should be a number, got tuple"]),
    (lambda s, h=160: torch.ones(2, 3), ["tensor of shape (2, 3)"]),
    (lambda s, h=160: np.array([1, 2]), ["should be a number, got ndarray"]),
    (lambda s, h=160: float("nan"), ["is nan"]),
    (lambda s, h=160: s * 12.5, ["should be a whole number", "37.5"]),
    (uncentred, ["without centre padding", "1 + samples // hop (301)"]),
    (floored, ["rounds UP", "not L // 2"]),
    (no_plus_one, ["1001 frames", "not 125"]),
    (hard_coded_hop, ["use the hop_length argument", "(3, 256) returned 38, expected 24"]),
    (frames_only, ["returned the number of STFT frames"]),
    (calls_the_library, ["calls audio_tokens from course_lib.budget"]),
    ("38", ["expects a function, but got str"]),
])
def test_audio_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch07.check_audio_tokens(answer), capsys, False, *phrases)


def test_audio_stub_says_not_implemented_yet(capsys):
    result = ch07.check_audio_tokens(stub)
    assert result.status == "not-implemented" and result.message.startswith("Not implemented")
    capsys.readouterr()


# ----------------------------------------------------------------------------- exercise 2
def square_right(context_length, prompt_tokens, patch_size=28, delimiters=2):
    room = context_length - prompt_tokens - delimiters
    return math.isqrt(room) * patch_size if room >= 0 else 0


def square_by_search(context_length, prompt_tokens, patch_size=28, delimiters=2):
    side = 0
    while ((side + patch_size) // patch_size) ** 2 + delimiters + prompt_tokens <= context_length:
        side += patch_size
    return side


def test_square_hand_numbers():
    # 2048 - 4 - 2 = 2042 >= 45^2 = 2025 < 46^2 = 2116: 45 x 28 = 1260 px (Qwen2-VL);
    # LLaVA-style 2048 - 4 = 2044: 45 x 14 = 630 px; exact fit 1308 - 12 = 1296 = 36^2.
    assert square_right(2048, 4) == 1260 and square_right(2048, 4, 14, 0) == 630
    assert square_right(1308, 10) == 36 * 28 and square_right(1305, 9) == 35 * 28
    assert all(square_by_search(*case) == square_right(*case) for case in ch07.SQUARE_CASES)


@pytest.mark.parametrize("answer", [
    square_right, square_by_search,
    lambda *case: np.int64(square_right(*case)), lambda *case: torch.tensor(square_right(*case)),
])
def test_square_right_answers_pass(answer, capsys):
    verdict_of(ch07.check_largest_square(answer), capsys, True, "largest square is 1260 px",
               "2027 image tokens", "2118 at 1288 px")


def no_delimiters(context_length, prompt_tokens, patch_size=28, delimiters=2):
    return square_right(context_length, prompt_tokens, patch_size, 0)


def no_prompt(context_length, prompt_tokens, patch_size=28, delimiters=2):
    return square_right(context_length, 0, patch_size, delimiters)


def rounds_up(context_length, prompt_tokens, patch_size=28, delimiters=2):
    room = context_length - prompt_tokens - delimiters
    return math.ceil(math.sqrt(max(room, 0))) * patch_size


def patches_per_side(context_length, prompt_tokens, patch_size=28, delimiters=2):
    return square_right(context_length, prompt_tokens, patch_size, delimiters) // patch_size


def strictly_less(context_length, prompt_tokens, patch_size=28, delimiters=2):
    side = 0
    while ((side + patch_size) // patch_size) ** 2 + delimiters + prompt_tokens < context_length:
        side += patch_size
    return side


def crashes_without_room(context_length, prompt_tokens, patch_size=28, delimiters=2):
    return math.isqrt(context_length - prompt_tokens - delimiters) * patch_size


def not_a_multiple(context_length, prompt_tokens, patch_size=28, delimiters=2):
    room = context_length - prompt_tokens - delimiters
    return int(math.sqrt(max(room, 0)) * patch_size)


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet"]),
    (lambda *case: [][0], ["IndexError", "line"]),
    (lambda *case: "1260", ["should be a number, got str"]),
    (lambda *case: np.array([1260, 1260]), ["should be a number, got ndarray"]),
    (lambda *case: torch.full((2,), 1260), ["tensor of shape (2,)"]),
    (lambda *case: math.nan, ["is nan"]),
    (no_delimiters, ["delimiter tokens", "(1305, 9, 28, 2) returned 1008", "expected 980"]),
    (no_prompt, ["subtract prompt_tokens"]),
    (rounds_up, ["round the square root DOWN", "returned 1288 (2122 tokens"]),
    (patches_per_side, ["number of patches per side"]),
    (strictly_less, ["use <=, not <", "(1308, 10, 28, 2)"]),
    (crashes_without_room, ["ValueError", "return 0"]),
    (not_a_multiple, ["not a multiple of 28"]),
])
def test_square_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch07.check_largest_square(answer), capsys, False, *phrases)
