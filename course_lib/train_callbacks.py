"""What :func:`course_lib.train.train` records and how it reports: the history, the state
handed to callbacks, the callback hooks and the progress line.

The progress display in a notebook is one line updated in place (an IPython display with a
``display_id``), so the notebook stores its *final* state ("20/20 epochs, 440 steps ..."),
not the "0/20" of a widget whose state was stripped; outside a notebook it prints a one-line
summary when training ends. :mod:`course_lib.train` re-exports every public name.
"""


import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib._validation import (
    ArgumentTypeError,
    check_flag,
    check_int,
    check_number,
    check_text,
    describe,
)


@dataclass
class History:
    """What happened during training.

    Attributes:
        losses: one training loss per optimiser step.
        logs: extra per-step values logged by hooks (``history.log(name, value)``).
        epochs: per-epoch curves: ``"train loss"`` (mean loss of the epoch's steps) and every
            metric returned by ``train(..., validate=...)``, one value per epoch.
        seconds: wall-clock training time.
    """

    losses: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def log(self, name: str, value: float) -> None:
        """Append ``value`` (a real number; NaN is kept, as a measured "undefined") to the
        per-step log ``name``."""
        value = _logged_value(value)  # checked before anything is stored
        self.logs.setdefault(check_text("name", name), []).append(value)

    def log_epoch(self, name: str, value: float) -> None:
        """Append ``value`` (a real number) to the per-epoch curve ``name``."""
        value = _logged_value(value)
        self.epochs.setdefault(check_text("name", name), []).append(value)


def _logged_value(value: Any) -> float:
    """A logged number: a Python, numpy or one-element torch real (not a bool, not a string)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = torch.as_tensor(value) if value.dtype != object else value
        if not isinstance(value, torch.Tensor) or value.numel() != 1 \
                or value.dtype == torch.bool or value.is_complex():
            raise ArgumentTypeError(f"value must be a real number, got {describe(value)}")
        return float(value.item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"value must be a real number, got {describe(value)}")
    return float(value)


@dataclass
class TrainState:
    """What a :class:`Callback` can read: the model, the history and where training is."""

    model: nn.Module
    history: History
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    started: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise ArgumentTypeError(f"model must be an nn.Module, got {describe(self.model)}")
        if not isinstance(self.history, History):
            raise ArgumentTypeError(f"history must be a History, got {describe(self.history)}")
        self.epochs = check_int("epochs", self.epochs, minimum=1)
        self.steps_per_epoch = check_int("steps_per_epoch", self.steps_per_epoch, minimum=0)
        self.epoch = check_int("epoch", self.epoch, minimum=0, maximum=self.epochs)
        self.step = check_int("step", self.step, minimum=0)
        self.started = check_number("started", self.started)


def _check_state(state: Any) -> TrainState:
    if not isinstance(state, TrainState):
        raise ArgumentTypeError(f"state must be a TrainState, got {describe(state)}")
    return state


class Callback:
    """Hooks into :func:`train`; override the ones you need (each gets the :class:`TrainState`)."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first step."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimiser step (``state.history.losses[-1]`` is its loss)."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After each epoch and its validation (``state.history.epochs`` is up to date)."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch."""


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with jupyter
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ProgressBar(Callback):
    """A progress line: epochs done, steps, seconds, the latest losses and metrics.

    In a notebook it is one display updated in place (at most ``every_s`` apart and at each
    epoch's end), so its stored output is the final state. Elsewhere it prints one summary
    line at the end (``print_summary=False`` silences it).
    """

    def __init__(self, description: str = "training", every_s: float = 0.2,
                 print_summary: bool = True) -> None:
        self.description = check_text("description", description)
        self.every_s = check_number("every_s", every_s, minimum=0)
        self.print_summary = check_flag("print_summary", print_summary)
        self._handle: Any = None
        self._last_update = 0.0

    def text(self, state: TrainState) -> str:
        """The line shown: ``"training: 20/20 epochs, 440 steps, 10.1 s, loss 1.881 ..."``."""
        _check_state(state)
        parts = [f"{self.description}: {state.epoch}/{state.epochs} epochs",
                 f"{state.step} steps", f"{time.perf_counter() - state.started:.1f} s"]
        history = state.history
        if history.epochs.get("train loss"):
            parts.append(f"train loss {history.epochs['train loss'][-1]:.3f}")
        elif history.losses:
            parts.append(f"loss {history.losses[-1]:.3f}")
        for name, values in history.epochs.items():
            if name != "train loss" and values:
                parts.append(f"{name} {values[-1]:.3f}")
        return ", ".join(parts)

    def _bundle(self, state: TrainState) -> dict[str, str]:
        done = state.epoch / max(1, state.epochs)
        text = self.text(state)
        html = (f'<progress value="{done:.3f}" max="1" style="width:12em"></progress> '
                f"<code>{text}</code>")
        return {"text/plain": text, "text/html": html}

    def on_train_begin(self, state: TrainState) -> None:
        _check_state(state)
        self._handle = None
        if _in_notebook():
            from IPython.display import display

            self._handle = display(self._bundle(state), raw=True, display_id=True)
        self._last_update = time.perf_counter()

    def _refresh(self, state: TrainState, force: bool = False) -> None:
        now = time.perf_counter()
        if self._handle is not None and (force or now - self._last_update >= self.every_s):
            self._handle.update(self._bundle(state), raw=True)
            self._last_update = now

    def on_step_end(self, state: TrainState) -> None:
        self._refresh(_check_state(state))

    def on_epoch_end(self, state: TrainState) -> None:
        self._refresh(_check_state(state), force=True)

    def on_train_end(self, state: TrainState) -> None:
        _check_state(state)
        if self._handle is not None:
            self._refresh(state, force=True)
        elif self.print_summary:
            print(self.text(state))


class _StepHook(Callback):
    """Adapts the historical ``on_step(history)`` argument of :func:`train` to a callback."""

    def __init__(self, hook: Callable[[History], None]) -> None:
        self.hook = hook

    def on_step_end(self, state: TrainState) -> None:
        self.hook(state.history)
