"""The course's one training loop, with callbacks for learning curves and the progress bar.

Every chapter that trains a model goes through :func:`train`: mini-batches from aligned
tensors, AdamW, an optional per-epoch evaluation (the learning curve), a progress display and
a :class:`History` of what happened. Extra behaviour plugs in as a :class:`Callback` instead of
a second copy of the loop. The history, the callback hooks and the progress line live in
:mod:`course_lib.train_callbacks` (re-exported here).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from course_lib._validation import (
    MAX_LOOP,
    ArgumentTypeError,
    check_allocation,
    check_flag,
    check_int,
    check_number,
    check_sequence,
    check_tensor,
    check_text,
    describe,
)
from course_lib.train_callbacks import (
    Callback,
    History,
    ProgressBar,
    TrainState,
    _StepHook,
)

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

def iterate_minibatches(
    tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None = None
) -> list[tuple[torch.Tensor, ...]]:
    """Shuffle aligned tensors (all with the same first dimension N) into mini-batches.

    Raises:
        ValueError: if the tensors disagree on N or ``batch_size`` is not positive.
        TypeError: if ``tensors`` is one tensor rather than a sequence of them (pass
            ``[tensor]``): its rows would otherwise be read as aligned tensors.
    """
    tensors = _check_aligned(tensors)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator or None, got "
                                f"{type(generator).__name__}")
    sizes = {len(t) for t in tensors}
    order = torch.randperm(sizes.pop(), generator=generator)
    return [tuple(t[idx.to(t.device)] for t in tensors) for idx in order.split(batch_size)]


def _check_aligned(tensors: Any) -> list[torch.Tensor]:
    """``tensors`` as a list of at least one tensor (N, ...), all with the same N."""
    tensors = check_sequence("tensors", tensors, of="tensors (N, ...)", min_length=1)
    checked = [check_tensor(f"tensors[{i}]", t, kind=None, min_ndim=1)
               for i, t in enumerate(tensors)]
    sizes = {len(t) for t in checked}
    if len(sizes) != 1:
        raise ValueError(f"tensors must share their first dimension, got sizes {sorted(sizes)}")
    return checked


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU for a model without any)."""
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module, got {describe(model)}")
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
        raise ArgumentTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    trainable_only = check_flag("trainable_only", trainable_only)
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
        TypeError: for arguments of the wrong kind, e.g. one tensor as ``tensors`` (pass
            ``[tensor]``).
        FloatingPointError: when the loss becomes NaN or infinite.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_of_batch):
        raise ArgumentTypeError(f"loss_of_batch must be a function of one batch, got "
                                f"{type(loss_of_batch).__name__}")
    tensors = _check_aligned(tensors)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_allocation("epochs", epochs * math.ceil(len(tensors[0]) / batch_size), MAX_LOOP,
                     "iterations")
    lr = check_number("lr", lr, above=0)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    progress = check_flag("progress", progress)
    for name, hook in (("on_step", on_step), ("validate", validate), ("on_epoch", on_epoch)):
        if hook is not None and not callable(hook):
            raise ArgumentTypeError(f"{name} must be a function or None, got "
                                    f"{type(hook).__name__}")
    callbacks = check_sequence("callbacks", callbacks, of="Callback objects")
    for index, hook in enumerate(callbacks):
        if not isinstance(hook, Callback):
            raise ArgumentTypeError(f"callbacks[{index}] must be a Callback, got "
                                    f"{type(hook).__name__}")
    if device is not None:
        model.to(device)
    target = torch.device(device) if device is not None else model_device(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters (all have requires_grad=False)")
    sizes = {len(t) for t in tensors}
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
    """Fraction of rows of ``logits`` (N, C) whose arg-max equals ``labels`` (N,).

    Raises:
        ValueError: for shapes that disagree or no rows (an accuracy of nothing is undefined).
    """
    dims: dict = {}
    logits = check_tensor("logits", logits, shape=("N", None), dims=dims)
    labels = check_tensor("labels", labels, shape=("N",), kind="int", dims=dims)
    if len(labels) == 0:
        raise ValueError("logits and labels must hold at least one row (N >= 1), got N = 0")
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
    if isinstance(histories, History):
        runs = [histories]
    else:
        runs = check_sequence("histories", histories, of="History objects", min_length=1)
        for index, run in enumerate(runs):
            if not isinstance(run, History):
                raise ArgumentTypeError(f"histories[{index}] must be a History, got "
                                        f"{describe(run)}")
    metrics = check_sequence("metrics", metrics, of="metric names (str)", min_length=1)
    for index, metric in enumerate(metrics):
        check_text(f"metrics[{index}]", metric)
    if labels is not None:
        labels = check_sequence("labels", labels, of="labels (str), one per metric")
        if len(labels) != len(metrics):
            raise ValueError(f"labels must hold one label per metric ({len(metrics)}), got "
                             f"{len(labels)}")
    if not all(callable(getattr(ax, name, None)) for name in ("plot", "set_xlabel", "legend")):
        raise ArgumentTypeError(f"ax must be a matplotlib Axes, got {describe(ax)}")
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
