"""Checkers for chapter 07 (the token budget): count audio tokens, fit the largest image.

Each checker calls the learner's function on inputs it controls, compares with an
independent computation, recognises the typical mistakes of the exercise (frames without
centre padding, a floor where a convolution rounds up, forgotten delimiter tokens, ...)
and prints "Well done!" or a precise hint. It never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from course_lib.budget import PRESETS, audio_tokens
from course_lib.checks._common import CheckResult, Failed, as_int, call_learner, guarded, verdict

SAMPLE_RATE = 16000
N_FFT = 400
# (seconds, hop_length): odd and even frame counts, fractions of a second, both hops.
AUDIO_CASES = tuple((seconds, hop) for hop in (160, 256)
                    for seconds in (3, 10, 0.5, 1, 5, 12.34, 30, 60, 2.2))
# (context_length, prompt_tokens, patch_size, delimiters): Qwen2-VL-like and LLaVA-like
# models; an exact fit (36^2 + 2 + 10 = 1308); a room of 36^2 - 1 (the 2 delimiters decide);
# a long prompt; no room at all; and a negative room.
SQUARE_CASES = ((2048, 4, 28, 2), (512, 9, 28, 2), (2048, 4, 14, 0), (1000, 0, 16, 0),
                (1308, 10, 28, 2), (1305, 9, 28, 2), (1000, 300, 14, 2), (4096, 100, 28, 2),
                (12, 10, 28, 2), (11, 10, 28, 2))
_LIBRARY_NAMES = {"audio_tokens", "stft_num_frames", "conv_output_length", "downsampled_length",
                  "AudioFrontEnd"}


def _uses_library(function: Any, names: set[str]) -> list[str]:
    code = getattr(function, "__code__", None)
    return sorted(names & set(code.co_names)) if code is not None else []


def _explaining(hints: dict[str, str], answers: dict, variants: dict, wrong: list) -> str | None:
    """The hint of the typical mistake that gives every answer, else every wrong answer."""
    for cases in (list(answers), wrong):
        for mistake, hint in hints.items():
            if all(answers[case] == variants[case][mistake] for case in cases):
                return hint
    return None


# ----------------------------------------------------------------------------- exercise 1
def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def _halve_three_times(frames: int, rounding: Callable[[float], int]) -> int:
    for _ in range(3):
        frames = rounding(frames / 2)
    return frames


def _audio_variants(seconds: float, hop: int) -> dict[str, int]:
    """What typical wrong formulas give, each named by the hint that fixes it."""
    samples = _samples(seconds)
    centred, uncentred = 1 + samples // hop, 1 + (samples - N_FFT) // hop
    return {
        "frames without centre padding": _halve_three_times(uncentred, math.ceil),
        "floor instead of ceil": _halve_three_times(centred, math.floor),
        "no +1 frame": _halve_three_times(samples // hop, math.ceil),
        "nominal rate": math.ceil(samples / hop / 8),
        "hop ignored": _halve_three_times(1 + samples // 160, math.ceil),
        "frames, not tokens": centred,
    }


_AUDIO_HINTS = {
    "frames without centre padding": (
        "you counted frames without centre padding, 1 + (samples - 400) // hop (298 for 3 s). "
        "torch.stft pads n_fft // 2 samples at each end, so frames = 1 + samples // hop (301)."),
    "floor instead of ceil": (
        "each stride-2 convolution rounds UP: floor((L + 2 - 3) / 2) + 1 = ceil(L / 2), not "
        "L // 2 (301 -> 151 -> 76 -> 38)."),
    "no +1 frame": (
        "frames = 1 + samples // hop: centre padding adds the frame centred on the last "
        "sample (10 s gives 1001 frames, so 126 tokens, not 125)."),
    "nominal rate": (
        "you used the nominal rate (frames / 8 from samples / hop). Count whole frames first, "
        "1 + samples // hop, then ceil(L / 2) three times."),
    "hop ignored": "use the hop_length argument: at hop 256, 3 s is 188 frames and 24 tokens.",
    "frames, not tokens": (
        "you returned the number of STFT frames; the three stride-2 convolutions still "
        "shorten it: L -> ceil(L / 2), three times."),
}


@guarded
def check_audio_tokens(my_audio_tokens: Callable[[float, int], int]) -> CheckResult:
    """Exercise 1: ``my_audio_tokens(seconds, hop_length) -> int``.

    Compares with :func:`course_lib.budget.audio_tokens` on clips of 0.5 s to 60 s at hops 160
    and 256 (16 kHz, window 400, centred STFT, three stride-2 convolutions), and names the
    mistake when every answer matches a typical wrong formula.
    """
    answers = {}
    for seconds, hop in AUDIO_CASES:
        got = call_learner(my_audio_tokens, seconds, hop, exercise="check_audio_tokens")
        answers[seconds, hop] = as_int(got, f"my_audio_tokens({seconds}, {hop})")
    expected = {case: audio_tokens(case[0], hop_length=case[1]) for case in AUDIO_CASES}
    wrong = [case for case in AUDIO_CASES if answers[case] != expected[case]]
    if wrong:
        seconds, hop = wrong[0]
        variants = {case: _audio_variants(*case) for case in AUDIO_CASES}
        hint = _explaining(_AUDIO_HINTS, answers, variants, wrong) or (
            "frames = 1 + samples // hop with samples = round(seconds * 16000), then "
            "ceil(L / 2) three times.")
        raise Failed(f"Not yet: my_audio_tokens({seconds}, {hop}) returned "
                     f"{answers[seconds, hop]}, expected {expected[seconds, hop]} "
                     f"({len(wrong)} of {len(AUDIO_CASES)} clips wrong). Hint: {hint}")
    library = _uses_library(my_audio_tokens, _LIBRARY_NAMES)
    if library:
        raise Failed(f"Not yet: the numbers are right, but my_audio_tokens calls "
                     f"{', '.join(library)} from course_lib.budget. Write the two formulas "
                     f"yourself: frames, then three halvings that round up.")
    return verdict(True, f"Well done! my_audio_tokens agrees on all {len(AUDIO_CASES)} clips: "
                         f"3 s -> {answers[3, 160]} tokens and 10 s -> {answers[10, 160]} at "
                         f"hop 160, 3 s -> {answers[3, 256]} at hop 256.")


# ----------------------------------------------------------------------------- exercise 2
def _largest_side(context: int, prompt: int, patch: int, delimiters: int) -> int:
    """The reference, by search: the largest multiple of ``patch`` whose image fits (or 0)."""
    best, side = 0, patch
    while (side // patch) ** 2 + delimiters + prompt <= context:
        best, side = side, side + patch
    return best


def _square_tokens(side: int, patch: int, delimiters: int) -> int:
    return (side // patch) ** 2 + delimiters


def _square_variants(context: int, prompt: int, patch: int, delimiters: int) -> dict[str, int]:
    room = context - prompt - delimiters
    whole = _largest_side(context, prompt, patch, delimiters) // patch
    return {
        "delimiters forgotten": _largest_side(context, prompt, patch, 0),
        "prompt forgotten": _largest_side(context, 0, patch, delimiters),
        "patches per side": whole,
        "one patch too many": (whole + 1) * patch if room >= 0 else patch,
        "strictly less": _largest_side(context - 1, prompt, patch, delimiters),
    }


_SQUARE_HINTS = {
    "delimiters forgotten": (
        "the image also costs its delimiter tokens (Qwen2-VL: <|vision_start|> and "
        "<|vision_end|>, 2): (side / patch)^2 + delimiters + prompt <= context."),
    "prompt forgotten": "the prompt shares the context: subtract prompt_tokens as well.",
    "patches per side": (
        "you returned the number of patches per side; return the side in pixels, "
        "patches x patch_size."),
    "one patch too many": (
        "that image does not fit: round the square root DOWN (math.isqrt), a side one patch "
        "longer is over budget."),
    "strictly less": (
        "an image that fills the context exactly still fits: use <=, not <."),
}


def _square_hint(error: Exception) -> str:
    if isinstance(error, ValueError) and ("isqrt" in str(error) or "domain" in str(error)):
        return "When nothing fits (no room left), return 0 instead of taking a square root."
    return "Read the error, fix the line, and run the check again."


@guarded
def check_largest_square(largest_square_side: Callable[[int, int, int, int], int]
                         ) -> CheckResult:
    """Exercise 2: ``largest_square_side(context_length, prompt_tokens, patch_size, delimiters)``.

    The largest side in pixels (a multiple of ``patch_size``, or 0 if nothing fits) of a
    square image whose ``(side / patch_size)^2 + delimiters`` tokens fit in the context with
    the prompt. Checked on Qwen2-VL-like (28-px tokens, 2 delimiters) and LLaVA-like cases,
    an exact fit and no room at all; the Qwen2-VL case is also counted by
    ``PRESETS["qwen2-vl"]``, the real processor's rule.
    """
    answers = {}
    for case in SQUARE_CASES:
        call = "largest_square_side({}, {}, {}, {})".format(*case)
        answers[case] = as_int(call_learner(largest_square_side, *case,
                                            exercise="check_largest_square",
                                            hint=_square_hint), call)
    wrong = [case for case in SQUARE_CASES if answers[case] != _largest_side(*case)]
    if wrong:
        case = wrong[0]
        _, prompt, patch, delimiters = case
        got, call = answers[case], "largest_square_side({}, {}, {}, {})".format(*case)
        variants = {other: _square_variants(*other) for other in SQUARE_CASES}
        hint = _explaining(_SQUARE_HINTS, answers, variants, wrong)
        if hint is None and got % patch:
            raise Failed(f"Not yet: {call} returned {got}, not a multiple of {patch}: the "
                         f"image must be cut into whole {patch}-px patches.")
        hint = hint or ("find the largest whole number n with n^2 + delimiters + prompt <= "
                        "context, and return n x patch_size (0 if nothing fits).")
        used = _square_tokens(got, patch, delimiters) + prompt
        raise Failed(f"Not yet: {call} returned {got} ({used} tokens with the prompt), "
                     f"expected {_largest_side(*case)}. Hint: {hint}")
    side = _largest_side(2048, 4, 28, 2)
    qwen = PRESETS["qwen2-vl"].image_tokens(side, side).context
    bigger = PRESETS["qwen2-vl"].image_tokens(side + 28, side + 28).context
    if qwen + 4 > 2048 or bigger + 4 <= 2048:  # pragma: no cover - a guard on the preset
        raise Failed("Not yet: the Qwen2-VL preset disagrees with the formula here.")
    return verdict(True, f"Well done! For Qwen2-VL with a 4-token prompt in 2048 positions the "
                         f"largest square is {side} px: the preset counts {qwen} image tokens "
                         f"({bigger} at {side + 28} px, over budget).")
