"""A time limit for one call of the learner's code: ``SIGALRM`` raises :class:`_OutOfTime`.

Used by :func:`course_lib.checks._common.call_learner`. ``signal.setitimer`` exists only on
POSIX systems, and a signal handler can only be set on the main thread (where a Jupyter
kernel, plain Python and pytest run their code); elsewhere the limit does nothing.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from typing import Any

REFIRE_S = 0.5  # after the limit, the alarm repeats, in case the learner's code swallows it


class _OutOfTime(BaseException):
    """Raised inside the learner's code when its time is up.

    A ``BaseException``, so that an ``except Exception`` in the learner's code does not
    swallow it.
    """


def can_limit_time() -> bool:
    """Whether :func:`call_learner` can stop a call here: the main thread of a POSIX system.

    ``signal.setitimer`` does not exist on Windows, and a signal handler can only be set on
    the main thread; in either case learner code runs without a time limit.
    """
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class _Alarm:
    """A time limit for one call: ``SIGALRM`` after ``seconds`` raises :class:`_OutOfTime`.

    :meth:`start` installs the handler and the timer, :meth:`stop` puts back the previous
    handler and timer (an outer timer gets the time it had left). The handler raises only
    while :attr:`active`, which the caller clears, with a plain assignment, as the first thing
    after the call ends; the alarm repeats every :data:`REFIRE_S` seconds after the limit, in
    case the learner's code catches the first one. (Code that catches every alarm, a bare
    ``except:`` inside an endless loop, cannot be stopped this way.)
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.active = False
        self.fired = False
        self._armed = False
        self._previous_handler: Any = None
        self._previous_timer = (0.0, 0.0)
        self._started = 0.0

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.active:
            self.fired = True
            raise _OutOfTime

    def start(self) -> None:
        if self.seconds is None or not math.isfinite(self.seconds) or not can_limit_time():
            return
        outer = signal.getitimer(signal.ITIMER_REAL)
        if outer[0] > 0:  # an outer limit that comes first still counts
            self.seconds = min(self.seconds, outer[0])
        self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        self._previous_timer = outer
        self._started = time.monotonic()
        self._armed = True
        self.active = True
        signal.setitimer(signal.ITIMER_REAL, max(float(self.seconds), 1e-3), REFIRE_S)

    def stop(self) -> None:
        self.active = False
        if not self._armed:
            return
        self._armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        previous = self._previous_handler
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        delay, interval = self._previous_timer
        if delay > 0:
            left = delay - (time.monotonic() - self._started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), interval)
