"""Shared by the tests of the exercise checkers: read a verdict, and an untouched stub."""

from course_lib.checks._common import CheckResult


def verdict_of(result, capsys, passed, *phrases):
    """Assert that ``result`` passed (or not), was printed, and names every phrase."""
    printed = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result.passed is passed
    assert result.message in printed
    assert result.message.startswith("Well done!") is passed
    for phrase in phrases:
        assert phrase in result.message, result.message
    return result


def stub(*args):
    """A learner's function left as the student copy gives it."""
    raise NotImplementedError("write this function")
