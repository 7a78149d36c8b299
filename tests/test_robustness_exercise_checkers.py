"""Chapters 01-07's exercise checkers never raise and never pass a wrong answer.

Every checker of ``course_lib.checks.ch01`` ... ``ch07`` is run on the same kinds of answer:
the right one (which must pass), the untouched stub, functions that raise, non-functions,
and the right answer damaged in generated ways (NaN or inf anywhere, numpy instead of torch,
a list, None, a string, an integer, complex or half-precision dtype, a wrong shape, noise,
zeros, a tensor without values on the ``meta`` device), plus two conceptual mistakes of each
exercise with the hint that names them. A verdict is always a :class:`CheckResult`; only the
right answer (or the same numbers in another numeric type) says "Well done!". The reference
functions the checkers compare with are checked against independent computations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import test_checks_ch01 as t01
import test_checks_ch02 as t02
import test_checks_ch03 as t03
import test_checks_ch04 as t04
import test_checks_ch05 as t05
import test_checks_ch06 as t06
import test_checks_ch07 as t07
import torch
from checker_verdicts import stub
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import assert_rejects, bad_int, covers, not_a_number, not_a_tensor

from course_lib.checks import ch01, ch02, ch03, ch04, ch05, ch06, ch07
from course_lib.checks._common import CheckResult, close

# checker -> (right answer, (mistake, phrase of its hint), (mistake, phrase of its hint))
CHECKERS = {
    "ch01.check_to_channels_first": (ch01.check_to_channels_first, t01.layout_correct,
                                     (t01.layout_reshape, "permute(2, 0, 1)"),
                                     (t01.layout_no_scaling, "divide by 255")),
    "ch01.check_peak_normalise": (ch01.check_peak_normalise, t01.peak_correct,
                                  (t01.peak_global, "whole batch"),
                                  (t01.peak_signed_max, "absolute")),
    "ch02.check_patchify": (ch02.check_patchify, t02.patchify_unfold,
                            (t02.patchify_plain_reshape, "strips"),
                            (t02.patchify_channels_last, "channel 0's")),
    "ch02.check_log_mel_from_filterbank": (ch02.check_log_mel_from_filterbank,
                                           t02.log_mel_correct,
                                           (t02.log_mel_magnitude, "magnitude"),
                                           (t02.log_mel_no_window, "hann_window")),
    "ch03.check_masked_attention": (ch03.check_masked_attention, t03.correct,
                                    (t03.no_scale, "sqrt(d_k)"),
                                    (t03.inverted_mask, "True means 'may attend'")),
    "ch03.check_split_heads": (ch03.check_split_heads, t03.split_correct,
                               (t03.split_plain_reshape, "mixes tokens"),
                               (t03.split_strided, "contiguous slice")),
    "ch04.check_info_nce": (ch04.check_info_nce, t04.info_nce_right,
                            (t04.rows_only, "image->text direction only"),
                            (t04.no_temperature, "divide them by the temperature")),
    "ch04.check_recall_at_k": (ch04.check_recall_at_k, t04.recall_right,
                               (t04.recall_columns, "down the columns"),
                               (t04.recall_smallest, "SMALLEST")),
    "ch05.check_late_fusion": (ch05.check_late_fusion, t05.late_right,
                               (t05.averaged_logits, "averaged the logits"),
                               (t05.product_of_experts, "product of experts")),
    "ch05.check_modality_dropout": (ch05.check_modality_dropout, t05.drop_right,
                                    (t05.drops_at_eval, "training=False"),
                                    (t05.no_rescue, "dropped every modality")),
    "ch06.check_splice": (ch06.check_splice, t06.splice_right,
                          (t06.keeps_placeholder, "placeholder's own embedding"),
                          (t06.drops_next, "right after the placeholder")),
    "ch06.check_gated_residual": (ch06.check_gated_residual, t06.gate_right,
                                  (lambda x, u, a: x + a * u, "not alpha itself"),
                                  (lambda x, u, a: x + torch.sigmoid(a) * u,
                                   "sigmoid(0) = 0.5")),
    "ch07.check_audio_tokens": (ch07.check_audio_tokens, t07.audio_right,
                                (t07.uncentred, "without centre padding"),
                                (t07.floored, "rounds UP")),
    "ch07.check_largest_square": (ch07.check_largest_square, t07.square_right,
                                  (t07.no_delimiters, "delimiter tokens"),
                                  (t07.rounds_up, "round the square root DOWN")),
}
NUMBER_CHECKERS = {"ch04.check_recall_at_k", "ch07.check_audio_tokens",
                   "ch07.check_largest_square"}
NAMES = sorted(CHECKERS)


def _verdict(checker, answer, capsys) -> CheckResult:
    result = checker(answer)  # a raise here fails the test: checkers never raise
    printed = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result.message in printed
    assert result.message.startswith(("Well done!", "Not yet:", "Not implemented yet:",
                                      "Finish exercise")), result.message
    assert result.passed is result.message.startswith("Well done!")
    return result


def _damaged(value, damage: str):
    """The right answer with one kind of damage, applied to every tensor it holds."""
    if isinstance(value, tuple):
        return tuple(_damaged(item, damage) for item in value)
    if isinstance(value, dict):
        return {key: _damaged(item, damage) for key, item in value.items()}
    if not isinstance(value, torch.Tensor):  # a number: its tensor form, damaged
        if damage in ("numpy", "list", "long", "half", "flatten"):
            return value  # the same number in another type: still right (tested below)
        value = torch.tensor(float(value))
    tensor = value.detach() if damage in ("numpy", "list") else value
    if damage == "nan everywhere":
        return tensor * float("nan")
    if damage == "nan in one place":
        flat = tensor.detach().clone().double().flatten()
        flat[flat.numel() // 2] = float("nan")
        return flat.reshape(tensor.shape).to(tensor.dtype if tensor.is_floating_point()
                                              else torch.float32)
    if damage == "inf":
        return tensor + float("inf")
    return {
        "numpy": lambda t: t.numpy(), "list": lambda t: t.tolist(), "none": lambda t: None,
        "string": lambda t: "tensor", "long": lambda t: t.long(),
        "complex": lambda t: t.to(torch.complex64), "half": lambda t: t.half(),
        "flatten": lambda t: t.flatten() if t.dim() != 1 else t[None],
        "noise": lambda t: t + 0.05 * torch.randn(t.shape, generator=torch.Generator()
                                                 .manual_seed(0)).to(t.dtype)
        if t.is_floating_point() else t + 1,
        "zeros": torch.zeros_like, "doubled": lambda t: 2 * t + 1,
        "meta": lambda t: torch.empty(t.shape, dtype=t.dtype, device="meta"),
    }[damage](tensor)


DAMAGES = ("nan everywhere", "nan in one place", "inf", "numpy", "list", "none", "string",
           "long", "complex", "half", "flatten", "noise", "zeros", "doubled", "meta")
# A damage that leaves a numeric answer's number intact is not a wrong answer.
HARMLESS_FOR_NUMBERS = {"numpy", "list", "long", "half", "flatten"}


@covers(*(entry[0] for entry in CHECKERS.values()))
@pytest.mark.parametrize("name", NAMES)
def test_the_right_answer_passes_and_the_stub_is_not_implemented(name, capsys):
    checker, right, *_ = CHECKERS[name]
    assert _verdict(checker, right, capsys).passed
    result = _verdict(checker, stub, capsys)
    assert result.message.startswith("Not implemented yet") and not result.passed


@covers(*(entry[0] for entry in CHECKERS.values()))
@pytest.mark.parametrize("name", NAMES)
def test_two_conceptual_mistakes_get_the_hint_that_names_them(name, capsys):
    checker, _, *mistakes = CHECKERS[name]
    for mistake, phrase in mistakes:
        result = _verdict(checker, mistake, capsys)
        assert not result.passed and phrase in result.message, result.message


@covers(*(entry[0] for entry in CHECKERS.values()))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_right_answer_never_passes(name, damage):
    checker, right, *_ = CHECKERS[name]
    if name in NUMBER_CHECKERS and damage in HARMLESS_FOR_NUMBERS:
        pytest.skip("the same number in another type: a right answer (tested below)")
    if (name, damage) == ("ch04.check_info_nce", "flatten"):
        pytest.skip("a loss of shape (1,) is still one number that backward() accepts")

    def damaged(*args, **kwargs):
        return _damaged(right(*args, **kwargs), damage)

    result = checker(damaged)
    assert isinstance(result, CheckResult) and not result.passed, (damage, result.message)
    assert result.message.startswith("Not yet:"), result.message
    if damage == "numpy" and name not in NUMBER_CHECKERS:
        assert "numpy" in result.message and "torch" in result.message  # a precise hint
    if damage == "meta":
        assert "could not run" not in result.message, result.message


@covers(ch04.check_recall_at_k, ch07.check_audio_tokens, ch07.check_largest_square)
@given(st.sampled_from(sorted(NUMBER_CHECKERS)),
       st.sampled_from([float, int, np.float32, np.float64, np.int64, torch.tensor, np.array]))
def test_a_right_number_passes_in_any_numeric_type(name, kind):
    checker, right, *_ = CHECKERS[name]
    if kind in (int, np.int64) and name == "ch04.check_recall_at_k":
        return  # a recall is a fraction: an integer type cannot hold it

    def typed(*args, **kwargs):
        return kind(right(*args, **kwargs))

    result = checker(typed)
    assert result.passed, result.message


@covers(ch04.check_recall_at_k)
@given(st.sampled_from([100.0, 50.0]), st.booleans())
def test_a_recall_as_a_percentage_or_out_of_range_gets_the_fraction_hint(scale, shift):
    def percent(similarity, k):
        return scale * t04.recall_right(similarity, k) + (7.0 if shift else 0.0)

    result = ch04.check_recall_at_k(percent)
    assert not result.passed
    if scale == 100.0 and not shift:
        assert "percentage" in result.message, result.message
    else:
        assert "between 0 and 1" in result.message, result.message


@covers(*(entry[0] for entry in CHECKERS.values()))
@given(st.sampled_from(NAMES), st.sampled_from([ValueError, RuntimeError, KeyError, TypeError,
                                                ZeroDivisionError, IndexError, AssertionError,
                                                RecursionError, AttributeError]),
       st.one_of(st.none(), st.integers(), st.text(max_size=3), st.just(torch.nn.Linear(2, 2)),
                 st.just(torch.zeros(2))))
def test_errors_and_non_functions_become_hints(name, error, not_a_function):
    checker = CHECKERS[name][0]

    def raising(*args, **kwargs):
        raise error("learner error")

    result = checker(raising)
    assert isinstance(result, CheckResult) and not result.passed
    assert error.__name__ in result.message or "calls itself" in result.message
    result = checker(not_a_function)
    assert not result.passed and "expects a function" in result.message


# ----------------------------------------------------------------------------- references
@covers(ch01.reference_to_channels_first, ch01.reference_peak_normalise)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(4, 4)), st.just(torch.zeros(2, 2, 3))),
       st.one_of(not_a_tensor(), st.just(torch.zeros(6)),
                 st.just(torch.tensor([[1.0, float("nan")]]))))
def test_chapter_01_references_check_their_inputs_and_match_numpy(image, waveforms):
    assert_rejects(ch01.reference_to_channels_first, "image", image)
    assert_rejects(ch01.reference_peak_normalise, "waveforms", waveforms)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 5, 2), dtype=np.uint8)
    np.testing.assert_allclose(ch01.reference_to_channels_first(pixels).numpy(),
                               np.transpose(pixels, (2, 0, 1)) / 255.0, rtol=1e-6)
    clips = np.array([[0.5, -2.0, 1.0], [0.0, 0.0, 0.0]])
    expected = np.array([[0.25, -1.0, 0.5], [0.0, 0.0, 0.0]])  # by hand
    np.testing.assert_allclose(ch01.reference_peak_normalise(clips).numpy(), expected)


@covers(ch02.reference_log_mel)
@given(bad_int(2, 2**16), bad_int(1, 400),
       st.one_of(not_a_tensor(), st.just(torch.zeros(2, 1000)), st.just(torch.zeros(100))))
def test_the_log_mel_reference_checks_its_sizes_and_clip(n_fft, hop, waveform):
    filterbank = torch.rand(201, 8)
    assert_rejects(ch02.reference_log_mel, "n_fft", torch.zeros(1000), filterbank, n_fft, 160)
    assert_rejects(ch02.reference_log_mel, "hop_length", torch.zeros(1000), filterbank, 400, hop)
    assert_rejects(ch02.reference_log_mel, "waveform", waveform, filterbank, 400, 160)
    assert_rejects(ch02.reference_log_mel, "filterbank", torch.zeros(1000), torch.rand(200, 8),
                   400, 160)
    silence = ch02.reference_log_mel(torch.zeros(1000), filterbank, 400, 160)
    assert silence.shape == (8, 1 + 1000 // 160)
    torch.testing.assert_close(silence, torch.full_like(silence, math.log(1e-10)))  # the floor


@covers(ch03.reference_split_heads)
@given(st.one_of(bad_int(1), st.sampled_from([5, 7])),
       st.one_of(not_a_tensor(), st.just(torch.zeros(2, 12)),
                 st.just(torch.zeros(1, 2, 12, dtype=torch.long))))
def test_the_head_split_reference_checks_heads_and_tokens(num_heads, tokens):
    assert_rejects(ch03.reference_split_heads, "num_heads", torch.zeros(1, 2, 12), num_heads)
    assert_rejects(ch03.reference_split_heads, "tokens", tokens, 3)
    x = torch.arange(24.0).reshape(1, 2, 12)
    heads = ch03.reference_split_heads(x, 3)
    assert heads.shape == (1, 3, 2, 4)
    assert heads[0, 1, 0].tolist() == [4.0, 5.0, 6.0, 7.0]  # head 1, token 0: features 4..7


@covers(ch05.reference_late_fusion, ch05.expected_rates)
@given(st.one_of(not_a_number(), st.floats(1.0001, 10), st.floats(-10, -0.0001)))
def test_chapter_05_references_check_inputs_and_match_hand_formulas(p):
    assert_rejects(ch05.expected_rates, "p", p)
    assert_rejects(ch05.reference_late_fusion, "logits", [torch.zeros(2, 4)])
    assert_rejects(ch05.reference_late_fusion, "logits", {"image": torch.zeros(2, 4),
                                                          "audio": torch.zeros(3, 4)})
    logits = {"image": torch.tensor([[2.0, 0.0]]), "audio": torch.tensor([[0.0, 1.0]])}
    probabilities = [np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum(),
                     np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()]
    np.testing.assert_allclose(ch05.reference_late_fusion(logits)[0].numpy(),
                               np.log((probabilities[0] + probabilities[1]) / 2), rtol=1e-5)
    # Two modalities, each dropped with p = 0.4; if both go, one comes back at random:
    # counted over the four outcomes (kept/dropped x kept/dropped) by hand.
    outcomes = {(True, True): 0.6 * 0.6, (True, False): 0.6 * 0.4, (False, True): 0.4 * 0.6,
                (False, False): 0.4 * 0.4}
    dropped_first = outcomes[False, True] + outcomes[False, False] / 2
    rates = ch05.expected_rates(0.4)
    assert math.isclose(rates["dropped"], dropped_first)
    assert math.isclose(rates["both kept"], outcomes[True, True])


def test_close_is_false_for_what_has_no_comparable_value():
    # Before: close() cast a complex tensor to float64 (dropping its imaginary part, with a
    # warning), so a complex answer with the right real part passed.
    right = torch.tensor([1.0, 2.0])
    assert close(right, right) and close(right.double(), right)
    assert not close(right.to(torch.complex64), right)
    assert not close(right + 1j, right)
    assert not close(torch.empty(2, device="meta"), right)
    assert not close(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]))
    assert not close(right, right[None])  # a shape mismatch
