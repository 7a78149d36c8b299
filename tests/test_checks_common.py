"""The shared machinery of the checkers: verdicts, safe calls, numbers, and the record."""

import math

import numpy as np
import pytest
import torch

from course_lib.checks import _common as common


@common.guarded
def check_double(double):
    got = common.as_int(common.call_learner(double, 21, exercise="check_double"), "double(21)")
    if got != 42:
        raise common.Failed(f"Not yet: double(21) returned {got}, expected 42.")
    return common.verdict(True, "Well done! double works.")


def test_a_passing_answer_is_printed_and_returned(capsys):
    result = check_double(lambda x: 2 * x)
    assert result.passed and result.status == "passed"
    assert capsys.readouterr().out == "Well done! double works.\n"


@pytest.mark.parametrize("answer, status, phrase", [
    (lambda x: (_ for _ in ()).throw(NotImplementedError("double: not implemented yet")),
     "not-implemented", "Not implemented yet: <lambda> raised NotImplementedError"),
    (lambda x: 1 / 0, "failed", "ZeroDivisionError: division by zero (line"),
    (lambda x: x + 1, "failed", "double(21) returned 22, expected 42"),
    (lambda x: float("nan"), "failed", "double(21) is nan"),
    (lambda x: "42", "failed", "should be a number, got str"),
    (lambda x: [42], "failed", "should be a number, got list"),
    (lambda x: True, "failed", "should be a number, got bool"),
    (lambda x: 42.5, "failed", "whole number"),
    (lambda x: torch.ones(2), "failed", "tensor of shape (2,)"),
    (42, "failed", "expects a function, but got int"),
])
def test_every_wrong_answer_becomes_a_message(answer, status, phrase, capsys):
    result = check_double(answer)
    assert not result.passed and result.status == status
    assert phrase in result.message
    assert capsys.readouterr().out.strip() == result.message


@pytest.mark.parametrize("value", [np.int64(42), np.array(42), np.float32(42.0),
                                   torch.tensor(42), torch.tensor([42.0]), 42.0])
def test_numpy_and_tensor_numbers_are_accepted(value, capsys):
    assert check_double(lambda x: value).passed


def test_a_checker_called_wrongly_still_answers(capsys):
    result = check_double()  # no argument at all
    assert not result.passed and "the check could not run (TypeError" in result.message


def test_close_is_nan_safe_and_shape_strict():
    assert common.close(1.0, 1.0 + 1e-7) and common.close(torch.ones(3), np.ones(3))
    assert not common.close(math.nan, math.nan)
    assert not common.close(torch.tensor([1.0, math.inf]), torch.tensor([1.0, math.inf]))
    assert not common.close(torch.ones(3), torch.ones(1, 3))
    assert not common.close("a", 1.0)


def test_as_tensor_accepts_numpy_and_rejects_shapes_and_nan():
    assert common.as_tensor(np.zeros((2, 3)), "x", (2, 3)).shape == (2, 3)
    with pytest.raises(common.Failed, match=r"shape \(3, 2\), expected \(2, 3\)"):
        common.as_tensor(torch.zeros(3, 2), "x", (2, 3))
    with pytest.raises(common.Failed, match="NaN"):
        common.as_tensor(torch.tensor([math.nan]), "x")
    with pytest.raises(common.Failed, match="should be a tensor, got list"):
        common.as_tensor([1, 2], "x")


def test_the_record_names_the_checker_chapter_and_status():
    result = common.verdict(False, "Not implemented yet: f raised NotImplementedError.")
    assert common.record("check_f", "ch07", result) == {
        "check": "check_f", "chapter": "ch07", "passed": False, "status": "not-implemented",
        "message": result.message}
    assert common.status_of(False, "Finish exercise 1 first: ...") == "needs-earlier-exercise"
    assert common.status_of(False, "Not yet: ...") == "failed"


@pytest.mark.parametrize("value, phrase", [
    (np.zeros((2, 3), dtype=np.float32),
     "f(x) is a numpy array (numpy.ndarray of shape (2, 3)), but a torch.Tensor is expected. "
     "torch.from_numpy(array) or torch.as_tensor(array) converts an array"),
    (np.float32(1.0), "f(x) is a numpy value (numpy.float32 1.0), but a torch.Tensor is expected."
                      " torch.from_numpy(array)"),
    ([[1.0, 2.0]], "f(x) is a list [[1.0, 2.0]], but a torch.Tensor is expected. Use torch."),
    (None, "f(x) is None, but a torch.Tensor is expected. Does the function end with a `return` "
           "line? Use torch."),
    (3, "f(x) is an int 3, but a torch.Tensor is expected. Use torch."),
    (torch.zeros(3, 2), "f(x) has shape (3, 2), expected (2, 3)."),
    (torch.zeros(2, 3, dtype=torch.long), "f(x) has dtype torch.int64, expected a float tensor."),
    (torch.zeros(2, 3, dtype=torch.complex64), "f(x) returned a complex tensor"),
    (torch.zeros(2, 3).half(), "f(x) returned torch.float16"),
    (torch.tensor([[0.0, math.nan, 1.0], [1.0, 1.0, 1.0]]),
     "f(x) contains NaN (1 of 6 values). Look for a 0 / 0"),
])
def test_learner_result_says_what_is_wrong_with_a_result(value, phrase):
    with pytest.raises(common.Failed) as failure:
        common.learner_result(value, "f(x)", (2, 3), "Use torch.")
    assert str(failure.value).startswith("Not yet: ") and phrase in str(failure.value)


def test_learner_result_rules_for_nan_integers_and_gradients():
    one_nan = torch.tensor([[0.0, math.nan, 1.0], [1.0, 1.0, 1.0]])
    assert common.learner_result(one_nan, "f(x)", (2, 3), "", reject="all NaN").shape == (2, 3)
    with pytest.raises(common.Failed, match=r"f\(x\) is all NaN\. Look for a 0 / 0"):
        common.learner_result(torch.full((2, 3), math.nan), "f(x)", (2, 3), "", reject="all NaN")
    with pytest.raises(common.Failed, match=r"f\(x\) contains NaN or inf\. Look for"):
        common.learner_result(torch.tensor([[1.0, math.inf, 0.0]] * 2), "f(x)", (2, 3), "",
                              reject="non-finite")
    whole = torch.ones(2, 3, dtype=torch.uint8)
    assert common.learner_result(whole, "f(x)", (2, 3), "", floating=False) is whole
    tracked = torch.ones(2, 3, requires_grad=True) * 2
    assert common.learner_result(tracked, "f(x)", (2, 3), "").requires_grad
    assert not common.learner_result(tracked, "f(x)", (2, 3), "", detach=True).requires_grad
    with pytest.raises(ValueError, match="reject must be one of"):
        common.learner_result(tracked, "f(x)", (2, 3), "", reject="some NaN")
