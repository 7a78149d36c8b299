"""A tiny, readable training loop shared by the chapters that train models.

It does what every chapter needs and nothing more: mini-batches from tensors, AdamW, a
progress bar, and a history of the loss, so that a chapter's training cell stays short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class History:
    """What happened during training: one loss per step, plus any extra logged values."""

    losses: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)

    def log(self, name: str, value: float) -> None:
        self.logs.setdefault(name, []).append(float(value))


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
    return [tuple(t[idx] for t in tensors) for idx in order.split(batch_size)]


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
) -> History:
    """Train ``model`` with AdamW on shuffled mini-batches of aligned ``tensors``.

    Args:
        model: the module whose parameters (those with requires_grad) are optimised.
        loss_of_batch: maps one mini-batch (a tuple, one slice per tensor) to a scalar loss.
        tensors: aligned tensors, each (N, ...).
        epochs: passes over the data.
        on_step: optional hook called after each step with the history (for extra logging).

    Returns:
        The training :class:`History`.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters (all have requires_grad=False)")
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    model.train()
    for _ in tqdm(range(epochs), desc="epochs", disable=not progress):
        for batch in iterate_minibatches(tensors, batch_size, generator):
            loss = loss_of_batch(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {len(history.losses)}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.losses.append(loss.item())
            if on_step is not None:
                on_step(history)
    model.eval()
    return history


@torch.no_grad()
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, C) whose arg-max equals ``labels`` (N,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    return (logits.argmax(dim=1) == labels).float().mean().item()
