"""A learner's function that never returns: every checker stops it and says so, in time.

For one checker of each chapter 01-07 and for the capstone's training check, a function that
loops forever and one that sleeps for days each get the verdict "did not return within N s"
(with a limit made small for the test), and the checker never raises. The machinery itself
(``_common.call_learner``): the previous SIGALRM handler and timer come back, a learner that
swallows the alarm is still stopped, a call on another thread runs without a limit.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks import (
    _capstone_common,
    _common,
    _time_limit,
    capstone,
    ch01,
    ch02,
    ch03,
    ch04,
    ch05,
    ch06,
    ch07,
)
from course_lib.checks._common import CheckResult
from course_lib.train import train

LIMIT_S = 0.2

pytestmark = pytest.mark.skipif(not _time_limit.can_limit_time(),
                                reason="no SIGALRM time limit here (Windows or not the main "
                                       "thread): the documented fallback is no limit")


def looping(*args):
    while True:
        pass


def sleeping(*args):
    time.sleep(1e6)


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(_common, "TIME_LIMIT_S", LIMIT_S)


def timed_out(result, seconds=LIMIT_S):
    assert isinstance(result, CheckResult) and not result.passed
    assert result.status == "failed"
    assert f"did not return within {seconds:g} s, so the check stopped it" in result.message
    assert "An endless loop?" in result.message and "`while` loop" in result.message
    return result


CHAPTER_CHECKS = {
    "ch01": ch01.check_to_channels_first,
    "ch02": ch02.check_patchify,
    "ch03": ch03.check_split_heads,
    "ch04": ch04.check_info_nce,
    "ch05": ch05.check_late_fusion,
    "ch06": ch06.check_splice,
    "ch07": ch07.check_audio_tokens,
}


@pytest.mark.parametrize("answer", [looping, sleeping], ids=["loop", "sleep"])
@pytest.mark.parametrize("chapter", sorted(CHAPTER_CHECKS))
def test_a_function_that_never_returns_is_stopped(chapter, answer, small_limit, capsys):
    start = time.monotonic()
    result = CHAPTER_CHECKS[chapter](answer)
    assert time.monotonic() - start < LIMIT_S + 3
    timed_out(result)
    assert result.message in capsys.readouterr().out
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_chapters_limit_is_a_few_seconds():
    assert 2 <= _common.TIME_LIMIT_S <= 10


def splice_loops_on_a_mismatch(text_embeddings, input_ids, image_tokens, image_token_id):
    """Right on every splice, but waits forever instead of refusing a count mismatch."""
    from course_lib.architectures import splice_image_tokens

    if int((input_ids == image_token_id).sum()) != len(image_tokens):
        while True:
            pass
    return splice_image_tokens(text_embeddings, input_ids, image_tokens,
                               image_token_id).embeddings


def test_the_count_mismatch_call_is_limited_too(small_limit, capsys):
    result = timed_out(ch06.check_splice(splice_loops_on_a_mismatch))
    assert "<image> placeholder(s)" in result.message


def test_a_learner_that_swallows_the_alarm_is_still_stopped(small_limit, capsys):
    def swallows(*args):
        try:
            time.sleep(1e6)
        except BaseException:  # noqa: BLE001 - what a learner might write
            pass
        while True:  # the alarm repeats
            pass

    def catches_and_returns(image):
        try:
            time.sleep(1e6)
        except BaseException:  # noqa: BLE001
            return image.permute(2, 0, 1).float() / 255

    timed_out(ch01.check_to_channels_first(swallows))
    timed_out(ch01.check_to_channels_first(catches_and_returns))


def test_a_quick_answer_still_passes_and_the_previous_alarm_comes_back(small_limit, capsys):
    calls = []

    def outer_handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGALRM, outer_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert ch07.check_audio_tokens(_right_audio_tokens).passed
        assert signal.getsignal(signal.SIGALRM) is outer_handler
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < left <= 30.0  # the outer timer keeps the time it had left
        timed_out(ch07.check_audio_tokens(looping))
        assert signal.getsignal(signal.SIGALRM) is outer_handler
        assert 25.0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30.0
        assert calls == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_keyboard_interrupt_is_not_a_verdict(small_limit):
    def interrupted(*args):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ch07.check_audio_tokens(interrupted)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_on_another_thread_there_is_no_limit(monkeypatch, capsys):
    monkeypatch.setattr(_common, "TIME_LIMIT_S", 1.0)
    results = []

    def slow_but_right(seconds, hop):
        time.sleep(0.1)  # 18 calls: 1.8 s in all, over the limit of one call
        return _right_audio_tokens(seconds, hop)

    def run():
        assert not _time_limit.can_limit_time()
        results.append(_common.call_learner(lambda: time.sleep(1.5) or "done",
                                            exercise="check_x"))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert results == ["done"]
    assert ch07.check_audio_tokens(slow_but_right).passed  # each call is under the limit


def _right_audio_tokens(seconds, hop):
    length = 1 + round(seconds * 16000) // hop
    for _ in range(3):
        length = -(-length // 2)
    return length


# ----------------------------------------------------------------------------- the capstone
@pytest.fixture(scope="module")
def separable():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (128,), generator=generator)
    onehot = F.one_hot(labels, 4).float()
    features = {m: torch.cat([onehot, torch.randn(128, width, generator=generator)], dim=1)
                for m, width in (("image", 6), ("text", 4), ("audio", 2))}
    return features, labels


class Concat(nn.Module):
    def __init__(self, input_dims, num_classes):
        super().__init__()
        self.input_dims = dict(input_dims)
        self.linear = nn.Linear(sum(self.input_dims.values()), num_classes)

    def forward(self, features):
        return self.linear(torch.cat([features[m] for m in self.input_dims], dim=1))


def train_then_loop(model, features, labels):
    names = list(features)
    history = train(model, lambda batch: F.cross_entropy(
        model(dict(zip(names, batch[:-1], strict=True))), batch[-1]),
        [features[m] for m in names] + [labels], epochs=2, batch_size=32, lr=1e-2,
        progress=False)
    while len(history.losses) > 0:  # a condition that never changes
        pass
    return history


def train_then_sleep(model, features, labels):
    time.sleep(1e6)


@pytest.mark.parametrize("answer", [train_then_loop, train_then_sleep])
def test_the_capstone_training_check_stops_an_endless_training(answer, separable, monkeypatch,
                                                               capsys):
    monkeypatch.setitem(_capstone_common.TIME_LIMITS_S, "check_training", 0.5)
    start = time.monotonic()
    result = capstone.check_training(answer, Concat, *separable)
    assert time.monotonic() - start < 5
    timed_out(result, 0.5)
    assert f"{answer.__name__} did not return within 0.5 s" in result.message
    assert "train for fewer epochs or a smaller model" in result.message
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_capstone_limits_leave_a_wide_margin():
    limits = _capstone_common.TIME_LIMITS_S
    # The chapter's own answers, measured on a busy 2-core CPU: 3.3 s, 8.7 s and 21 s.
    assert limits["check_tensors"] >= 5 * 3.3 and limits["check_training"] >= 5 * 8.7
    assert limits["check_honest"] >= 5 * 21
    assert set(limits) >= {"check_tensors", "check_model", "check_training",
                           "check_evaluation", "check_missing_modality", "check_honest"}


def test_the_capstone_evaluation_check_stops_a_loop(monkeypatch, capsys):
    monkeypatch.setitem(_capstone_common.TIME_LIMITS_S, "check_evaluation", LIMIT_S)
    timed_out(capstone.check_evaluation(looping))
