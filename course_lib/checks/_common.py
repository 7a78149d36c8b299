"""What every checker shares: the verdict, calling the learner's function, and comparisons.

A checker takes the learner's *function*, calls it on inputs it controls, and returns a
:class:`CheckResult`. It never raises: whatever goes wrong in the learner's code becomes a
message. Messages start with one of :data:`PREFIXES`: "Well done!" (passed), "Not implemented
yet:" (the stub still raises ``NotImplementedError``), "Finish exercise N first:" (an earlier
exercise is needed) or "Not yet:" (with a hint).

Showing a verdict. Outside a notebook the message is printed. In a notebook kernel it is shown
as one display output whose ``text/plain`` is the message and whose metadata, under
:data:`RECORD_KEY`, holds a machine-readable record of the verdict (checker, chapter, status,
message): ``tools/grade.py`` reads these records back from an executed notebook.

Time limits. Every call of the learner's code goes through :func:`call_learner`, which stops
it after a time limit (:data:`TIME_LIMIT_S`, or the ``time_limit_s`` the checker passes): a
function that never returns (an endless loop, a forgotten ``time.sleep``) becomes the verdict
"Not yet: ... did not return within N s" instead of a cell that hangs. The limit uses
``signal.setitimer`` and ``SIGALRM``, so it works on the main thread of a POSIX system (a
Jupyter kernel runs every cell on its main thread; so does plain Python and pytest); on
Windows, or on another thread, there is no limit
(:func:`course_lib.checks._time_limit.can_limit_time` says which).

Writing a checker::

    @guarded
    def check_square(square):
        got = call_learner(square, 3.0, exercise="check_square")
        expect_number(got, "square(3.0)")
        if not close(got, 9.0):
            raise Failed(f"Not yet: square(3.0) returned {got}, expected 9.0.")
        return verdict(True, "Well done! ...")
"""

from __future__ import annotations

import functools
import math
import numbers
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.checks._time_limit import _Alarm, _OutOfTime

RECORD_KEY = "course_lib.checks"
# Seconds one call of the learner's code may take in chapters 01-07 (the capstone passes its
# own, per checker). The references take at most 36 ms a call (chapter 05's modality dropout
# on 4,000 examples; most take under 1 ms), so 5 s leaves a margin of over 100x for a slow
# but correct answer (a Python loop where the chapter vectorises).
TIME_LIMIT_S = 5.0
PREFIXES = {
    "Well done!": "passed",
    "Not implemented yet": "not-implemented",
    "Finish exercise": "needs-earlier-exercise",
    "Not yet": "failed",
}


@dataclass
class CheckResult:
    """The verdict of a checker: ``passed``, the ``message`` shown, and the ``value`` produced.

    ``value`` is what the learner's code produced when that is useful later (the tensors of
    exercise 1, the trained model of exercise 3), else ``None``.
    """

    passed: bool
    message: str
    value: Any = field(default=None, repr=False)

    def __repr__(self) -> str:  # the message is printed already; keep the echo short
        return f"CheckResult(passed={self.passed})"

    @property
    def status(self) -> str:
        """``passed``, ``not-implemented``, ``needs-earlier-exercise`` or ``failed``."""
        return status_of(self.passed, self.message)


class Failed(Exception):
    """Raised inside a checker to stop at the first problem; carries the learner's message."""


# The capstone's historical private names.
_Failed = Failed


def status_of(passed: bool, message: str) -> str:
    """The machine-readable status of a verdict, from ``passed`` and the message's prefix."""
    if passed:
        return "passed"
    for prefix, status in PREFIXES.items():
        if prefix != "Well done!" and message.startswith(prefix):
            return status
    return "failed"


def verdict(passed: bool, message: str, value: Any = None) -> CheckResult:
    """A :class:`CheckResult`; :func:`guarded` shows it (printed, or displayed with a record)."""
    return CheckResult(passed, message, value)


_verdict = verdict


def record(check: str, chapter: str, result: CheckResult) -> dict[str, Any]:
    """The machine-readable record of one verdict (what ``tools/grade.py`` collects)."""
    return {"check": check, "chapter": chapter, "passed": bool(result.passed),
            "status": result.status, "message": result.message}


def _kernel_shell() -> Any:
    """The IPython kernel this code runs in, or ``None`` (plain Python, pytest, a terminal)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def show(check: str, chapter: str, result: CheckResult) -> None:
    """Print the message, or, in a notebook kernel, display it with its record as metadata."""
    if _kernel_shell() is None:
        print(result.message)
        return
    from IPython.display import display

    display({"text/plain": result.message},
            metadata={RECORD_KEY: record(check, chapter, result)}, raw=True)


def guarded(check: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """Make a checker total and visible: every outcome becomes a shown :class:`CheckResult`.

    A :class:`Failed` raised inside becomes its message; any other exception (a bug in how
    the checker was called) becomes a "Not yet:" message naming it.
    """
    chapter = check.__module__.rsplit(".", 1)[-1]

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> CheckResult:
        try:
            result = check(*args, **kwargs)
            if not isinstance(result, CheckResult):
                raise TypeError(f"{check.__name__} returned {type(result).__name__}")
        except Failed as failure:
            result = verdict(False, str(failure))
        except _OutOfTime:  # pragma: no cover - call_learner turns it into a message first
            result = verdict(False, "Not yet: your function did not return within its time "
                                    "limit, so the check stopped it. An endless loop?")
        except Exception as error:  # noqa: BLE001 - the checker must never crash
            result = verdict(False, f"Not yet: the check could not run ({type(error).__name__}: "
                                    f"{error}). Check the arguments you passed to it.")
        show(check.__name__, chapter, result)
        return result

    return wrapper


_guarded = guarded


# ----------------------------------------------------------------------------- the learner's code
def learner_frame(error: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the learner's own code (not torch's, numpy's or the course's)."""
    frames = traceback.extract_tb(error.__traceback__)
    library = ("site-packages", "dist-packages", "course_lib", "/lib/python")
    own = [f for f in frames if not any(part in f.filename for part in library)]
    return (own or frames or [None])[-1]


def _timed_out(name: str, seconds: float | None, slow: str) -> Failed:
    return Failed(f"Not yet: {name} did not return within {seconds:g} s, so the check stopped "
                  f"it. An endless loop? Check that every `while` loop can end (something in "
                  f"it must change its condition) and that nothing waits (time.sleep, "
                  f"input()).{' ' + slow if slow else ''}")


def call_learner(function: Any, *args: Any, exercise: str, name: str | None = None,
                 hint: Callable[[Exception], str] | None = None,
                 time_limit_s: float | None = None, slow: str = "", **kwargs: Any) -> Any:
    """Call the learner's ``function``; a stub, an error or a time-out becomes a :class:`Failed`.

    Args:
        function: what the learner passed (it should be a function, not its result).
        exercise: the checker's name, for the message.
        name: how to call the function in messages (default: its ``__name__``).
        hint: turns the learner's exception into a sentence of advice.
        time_limit_s: seconds the call may take (default :data:`TIME_LIMIT_S`, read at each
            call); enforced where ``_time_limit.can_limit_time()``, else no limit.
        slow: a sentence added to the time-out message (what to do if it is only slow).

    Raises:
        Failed: "Not implemented yet: ..." for ``NotImplementedError``; "Not yet: ... did not
            return within N s" when the time is up; "Not yet: ..." naming the exception, the
            learner's line and a hint, for any other exception.
    """
    name = name or getattr(function, "__name__", type(function).__name__)
    if isinstance(function, nn.Module) or not callable(function):
        raise Failed(f"Not yet: {exercise} expects a function, but got {type(function).__name__}"
                     f" {function!r:.60}. Pass the function itself (no parentheses).")
    alarm = _Alarm(TIME_LIMIT_S if time_limit_s is None else time_limit_s)
    try:
        alarm.start()
        result = function(*args, **kwargs)
        alarm.active = False  # first, before anything else can be interrupted
    except BaseException as caught:  # noqa: BLE001 - sorted out below
        alarm.active = False
        alarm.stop()
        error = caught
    else:
        alarm.stop()
        if alarm.fired:  # the learner's code caught the alarm and went on
            raise _timed_out(name, alarm.seconds, slow)
        return result
    if isinstance(error, _OutOfTime) or (alarm.fired and isinstance(error, Exception)):
        raise _timed_out(name, alarm.seconds, slow) from None
    if not isinstance(error, Exception):
        raise error  # KeyboardInterrupt (the stop button), SystemExit: not the checker's
    if isinstance(error, NotImplementedError):
        where = f" ({error})" if str(error) else ""
        raise Failed(f"Not implemented yet: {name} raised NotImplementedError{where}. Replace "
                     f"the `raise NotImplementedError` line with your code, then run this "
                     f"cell again.") from None
    if isinstance(error, Failed):
        raise error
    if isinstance(error, RecursionError):
        raise Failed(f"Not yet: {name} calls itself without end (RecursionError).") from None
    frame = learner_frame(error)
    where = f" (line {frame.lineno}, `{(frame.line or '').strip()}`)" if frame else ""
    advice = hint(error) if hint else "Read the error, fix the line, and run the check again."
    raise Failed(f"Not yet: {name} raised {type(error).__name__}: {error}{where}. "
                 f"{advice}") from None


# ----------------------------------------------------------------------------- comparisons
def as_int(value: Any, who: str) -> int:
    """``value`` as a Python int: ints, numpy integers, integral floats and one-element tensors.

    Raises:
        Failed: for anything else (a bool, a string, a list, NaN, a fraction, a tensor of
            several numbers), with a message saying what ``who`` returned.
    """
    number = as_number(value, who)
    if not float(number).is_integer():
        raise Failed(f"Not yet: {who} should be a whole number (a count), got {number!r}.")
    return int(number)


def as_number(value: Any, who: str) -> float | int:
    """``value`` as a finite Python number (int kept as int); numpy and 1-element tensors too.

    Raises:
        Failed: for a bool, a non-number, a tensor or array of several numbers, NaN or inf.
    """
    original = value
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise Failed(f"Not yet: {who} is a tensor on the 'meta' device, which has no value.")
        if value.numel() != 1:
            raise Failed(f"Not yet: {who} should be one number, got a tensor of shape "
                         f"{tuple(value.shape)}.")
        value = value.item()
    elif hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "size", 0) == 1:
        value = value.item()  # a numpy scalar or a one-element array
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Failed(f"Not yet: {who} should be a number, got {type(original).__name__} "
                     f"{original!r:.60}.")
    if not math.isfinite(value):
        raise Failed(f"Not yet: {who} is {value}: look for a division by zero or a log of 0.")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def as_tensor(value: Any, who: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """``value`` as a float tensor (numpy arrays accepted), with ``shape`` if given, finite.

    Raises:
        Failed: for a non-array, a wrong shape, or NaN / inf values.
    """
    if not isinstance(value, torch.Tensor):
        if hasattr(value, "__array__") and hasattr(value, "shape"):
            value = torch.as_tensor(value)
        else:
            raise Failed(f"Not yet: {who} should be a tensor, got {type(value).__name__} "
                         f"{value!r:.60}.")
    if not (value.is_floating_point() or value.is_complex()):
        value = value.float()
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Failed(f"Not yet: {who} has shape {tuple(value.shape)}, expected {tuple(shape)}.")
    if not torch.isfinite(value).all():
        raise Failed(f"Not yet: {who} contains NaN or inf.")
    return value


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind


def not_a_tensor(value: Any, who: str, advice: str = "") -> Failed:
    """The message for a result that should be a torch tensor and is not (to be raised).

    It says what ``who`` is instead, that a ``torch.Tensor`` is expected, how to convert a
    numpy array (``torch.from_numpy`` / ``torch.as_tensor``, though staying with torch is
    better), and ``advice``, the chapter's sentence on which torch operations to use.
    """
    extra = ""
    if value is None:
        got, extra = "None", " Does the function end with a `return` line?"
    elif isinstance(value, np.ndarray):
        got = f"a numpy array (numpy.ndarray of shape {value.shape})"
    elif type(value).__module__.split(".")[0] == "numpy":
        got = f"a numpy value (numpy.{type(value).__name__} {str(value):.40})"
    else:
        module = type(value).__module__.split(".")[0]
        kind = type(value).__name__ if module == "builtins" else f"{module}.{type(value).__name__}"
        got = f"{_a(kind)} {value!r:.40}"
    if got.startswith("a numpy"):
        extra = (" torch.from_numpy(array) or torch.as_tensor(array) converts an array, but "
                 "better stay with torch operations (no .numpy(), no np. functions), so that "
                 "the result stays a tensor.")
    return Failed(f"Not yet: {who} is {got}, but a torch.Tensor is expected.{extra}"
                  f"{' ' + advice if advice else ''}")


def learner_tensor(value: Any, who: str, advice: str) -> torch.Tensor:
    """``value`` if it is a real, readable torch tensor, else a :class:`Failed` that says why.

    A non-tensor gets :func:`not_a_tensor`'s message (a numpy array its own hint: the
    exercises ask for torch operations, so that the result stays a tensor a model can train
    through), as do tensors without data (``meta``), complex tensors and half-precision
    ones, which round the values the checker compares.

    Args:
        advice: the chapter's sentence on which torch operations to use.
    """
    if not isinstance(value, torch.Tensor):
        raise not_a_tensor(value, who, advice)
    if value.device.type == "meta":
        raise Failed(f"Not yet: {who} returned a tensor on the 'meta' device, which has a shape "
                     f"but no values. Compute the result from the inputs.")
    if value.is_complex():
        raise Failed(f"Not yet: {who} returned a complex tensor ({value.dtype}); the result is "
                     f"real: take .abs() or .real where a complex number appears.")
    if value.dtype in (torch.float16, torch.bfloat16):
        raise Failed(f"Not yet: {who} returned {value.dtype}, which keeps only about 3 "
                     f"significant digits. Keep float32 (do not call .half()).")
    return value


REJECTS = ("any NaN", "all NaN", "non-finite")


def learner_result(value: Any, who: str, shape: tuple[int, ...], advice: str, *,
                   floating: bool = True, reject: str = "any NaN",
                   detach: bool = False) -> torch.Tensor:
    """The learner's result as a tensor of ``shape``, or a :class:`Failed` with a precise hint.

    The one gate of the chapters' tensor results: a non-tensor (:func:`not_a_tensor`), a
    tensor without values, complex or half precision (:func:`learner_tensor`), a wrong shape,
    an integer tensor where ``floating`` is asked for, and NaN by the ``reject`` rule.

    Args:
        value: what the learner's function returned.
        who: how to name it in messages (the call, e.g. ``"patchify(images of shape ...)"``).
        shape: the expected shape.
        advice: the chapter's sentence on which torch operations to use.
        floating: whether the result must be a float tensor (else integers pass too).
        reject: ``"any NaN"`` (one NaN fails), ``"all NaN"`` (only a result that is NaN
            everywhere fails: the checker names NaN in places itself) or ``"non-finite"``
            (NaN or inf anywhere fails).
        detach: return ``value.detach()`` (when the checker only compares values).

    Raises:
        Failed: for each of these problems, naming ``who``.
        ValueError: for a ``reject`` rule not in :data:`REJECTS` (a bug in the checker).
    """
    if reject not in REJECTS:
        raise ValueError(f"reject must be one of {REJECTS}, got {reject!r}")
    value = learner_tensor(value, who, advice)
    if tuple(value.shape) != tuple(shape):
        raise Failed(f"Not yet: {who} has shape {tuple(value.shape)}, expected {tuple(shape)}.")
    if floating and not value.is_floating_point():
        raise Failed(f"Not yet: {who} has dtype {value.dtype}, expected a float tensor.")
    if value.is_floating_point():
        nan = torch.isnan(value)
        if reject == "all NaN" and value.numel() and bool(nan.all()):
            raise Failed(f"Not yet: {who} is all NaN. Look for a 0 / 0 or an operation on NaN.")
        if reject == "any NaN" and bool(nan.any()):
            raise Failed(f"Not yet: {who} contains NaN ({int(nan.sum())} of {value.numel()} "
                         f"values). Look for a 0 / 0 or an operation on NaN.")
        if reject == "non-finite" and not bool(torch.isfinite(value).all()):
            raise Failed(f"Not yet: {who} contains NaN or inf. Look for a 0 / 0, a log of 0 "
                         f"or an operation on NaN.")
    return value.detach() if detach else value


def close(got: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """NaN-safe closeness of numbers or tensors: NaN, inf, a complex value, a tensor without
    data (``meta``) or a shape mismatch is never close."""
    if any(isinstance(v, torch.Tensor) and (v.is_complex() or v.device.type == "meta")
           or isinstance(v, complex) or getattr(getattr(v, "dtype", None), "kind", "") == "c"
           for v in (got, expected)):
        return False
    try:
        got_t = torch.as_tensor(got, dtype=torch.float64)
        expected_t = torch.as_tensor(expected, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    if got_t.shape != expected_t.shape or not torch.isfinite(got_t).all():
        return False
    return bool(torch.allclose(got_t, expected_t, atol=atol, rtol=rtol))
