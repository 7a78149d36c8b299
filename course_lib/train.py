"""The course's one training loop, with callbacks for learning curves and the progress bar.

Every chapter that trains a model goes through :func:`train`: mini-batches from aligned
tensors, AdamW, an optional per-epoch evaluation (the learning curve), a progress display and
a :class:`History` of what happened. Extra behaviour plugs in as a :class:`Callback` instead of
a second copy of the loop.

The progress display in a notebook is one line updated in place (an IPython display with a
``display_id``), so the notebook stores its *final* state ("20/20 epochs, 440 steps ..."),
not the "0/20" of a widget whose state was stripped; outside a notebook it prints a one-line
summary when training ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "Callback",
    "History",
    "ProgressBar",
    "TrainState",
    "accuracy",
    "count_parameters",
    "iterate_minibatches",
    "model_device",
    "plot_learning_curves",
    "train",
]


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
        """Append ``value`` to the per-step log ``name``."""
        self.logs.setdefault(name, []).append(float(value))

    def log_epoch(self, name: str, value: float) -> None:
        """Append ``value`` to the per-epoch curve ``name``."""
        self.epochs.setdefault(name, []).append(float(value))


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
        self.description, self.every_s, self.print_summary = description, every_s, print_summary
        self._handle: Any = None
        self._last_update = 0.0

    def text(self, state: TrainState) -> str:
        """The line shown: ``"training: 20/20 epochs, 440 steps, 10.1 s, loss 1.881 ..."``."""
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
        self._refresh(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._refresh(state, force=True)

    def on_train_end(self, state: TrainState) -> None:
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


def iterate_minibatches(
    tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None = None
) -> list[tuple[torch.Tensor, ...]]:
    """Shuffle aligned tensors (all with the same first dimension N) into mini-batches.

    Raises:
        ValueError: if the tensors disagree on N or ``batch_size`` is not positive.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sizes = {len(t) for t in tensors}
    if len(sizes) != 1:
        raise ValueError(f"tensors must share their first dimension, got sizes {sorted(sizes)}")
    order = torch.randperm(sizes.pop(), generator=generator)
    return [tuple(t[idx.to(t.device)] for t in tensors) for idx in order.split(batch_size)]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (shared tensors counted once); works on ``meta``.

    Args:
        trainable_only: count only parameters with ``requires_grad`` (those training changes).

    Raises:
        ValueError: if ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def train(
    model: nn.Module,
    loss_of_batch: Callable[[tuple[torch.Tensor, ...]], torch.Tensor],
    tensors: Sequence[torch.Tensor],
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
    on_step: Callable[[History], None] | None = None,
    device: torch.device | str | None = None,
    validate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    callbacks: Sequence[Callback] = (),
    on_epoch: Callable[[int], None] | None = None,
) -> History:
    """Train ``model`` with AdamW on shuffled mini-batches of aligned ``tensors``.

    Args:
        model: the module whose parameters (those with requires_grad) are optimised.
        loss_of_batch: maps one mini-batch (a tuple, one slice per tensor, already on
            ``device``) to a scalar loss.
        tensors: aligned tensors, each (N, ...); they may stay on the CPU, each batch is moved.
        epochs: passes over the data.
        batch_size, lr, weight_decay: the usual; ``seed`` fixes the shuffling.
        progress: show a :class:`ProgressBar`.
        on_step: optional hook called after each step with the history (for extra logging).
        device: where to train; the model and every batch are moved there (``None``: where the
            model already is).
        validate: optional ``model -> {metric: value}`` run after every epoch in eval mode
            without gradients (e.g. validation loss and accuracy); the values go to
            ``history.epochs`` next to ``"train loss"``, giving the learning curves.
        callbacks: extra :class:`Callback` objects.
        on_epoch: optional ``epoch -> None`` called at the start of each epoch (e.g. to
            re-pair the data).

    Returns:
        The training :class:`History`.

    Raises:
        ValueError: for a non-positive ``epochs``, a model without trainable parameters,
            or tensors that disagree on N.
        FloatingPointError: when the loss becomes NaN or infinite.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if device is not None:
        model.to(device)
    target = torch.device(device) if device is not None else model_device(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters (all have requires_grad=False)")
    sizes = {len(t) for t in tensors}
    if len(sizes) != 1:
        raise ValueError(f"tensors must share their first dimension, got sizes {sorted(sizes)}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    hooks = list(callbacks)
    if on_step is not None:
        hooks.append(_StepHook(on_step))
    if progress:
        hooks.append(ProgressBar())
    state = TrainState(model, history, epochs, math.ceil(sizes.pop() / batch_size),
                       started=time.perf_counter())
    for hook in hooks:
        hook.on_train_begin(state)
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        model.train()
        epoch_losses = []
        for batch in iterate_minibatches(tensors, batch_size, generator):
            batch = tuple(t.to(target, non_blocking=True) for t in batch)
            loss = loss_of_batch(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {state.step}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = loss.item()
            history.losses.append(value)
            epoch_losses.append(value)
            state.step += 1
            for hook in hooks:
                hook.on_step_end(state)
        history.log_epoch("train loss", sum(epoch_losses) / len(epoch_losses))
        if validate is not None:
            model.eval()
            with torch.no_grad():
                for name, metric in validate(model).items():
                    history.log_epoch(name, float(metric))
        state.epoch = epoch + 1
        for hook in hooks:
            hook.on_epoch_end(state)
    model.eval()
    history.seconds = time.perf_counter() - state.started
    for hook in hooks:
        hook.on_train_end(state)
    return history


@torch.no_grad()
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, C) whose arg-max equals ``labels`` (N,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()


def plot_learning_curves(
    ax: Any,
    histories: History | Sequence[History],
    metrics: Sequence[str] = ("train loss",),
    *,
    title: str | None = None,
    ylabel: str | None = None,
    labels: Sequence[str] | None = None,
) -> Any:
    """Per-epoch curves of one or several runs (e.g. one per seed) on a matplotlib ``ax``.

    Several histories are drawn as thin lines with their mean in bold, one colour per metric.

    Raises:
        ValueError: if no history is given or a metric is missing from a history.
    """
    runs = [histories] if isinstance(histories, History) else list(histories)
    if not runs:
        raise ValueError("histories must hold at least one History")
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for index, metric in enumerate(metrics):
        curves = []
        for run in runs:
            if metric not in run.epochs:
                raise ValueError(f"metric {metric!r} is not in the history; it has "
                                 f"{sorted(run.epochs)}")
            curves.append(run.epochs[metric])
        colour = colours[index % len(colours)]
        label = labels[index] if labels is not None else metric
        epochs = range(1, len(curves[0]) + 1)
        if len(curves) > 1:
            for curve in curves:
                ax.plot(epochs, curve, color=colour, lw=0.6, alpha=0.4)
            mean = [sum(values) / len(values) for values in zip(*curves)]
            ax.plot(epochs, mean, color=colour, lw=2, label=f"{label} (mean of {len(curves)})")
        else:
            ax.plot(epochs, curves[0], color=colour, lw=1.5, label=label)
    ax.set_xlabel("epoch")
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
