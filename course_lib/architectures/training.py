"""Train any of this package's models on a chosen device with :func:`course_lib.train.train`.

:func:`train_on` moves the model and every tensor to ``device`` and hands them to the course's
one training loop, so a mini-batch is always a slice of tensors that already live there; the
recipes (:func:`pretrain_language_model`, :func:`train_llava_stage`, :func:`train_flamingo`)
set what is frozen, pick the loss and log what the chapter plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_lib._validation import (
    ArgumentTypeError,
    check_sequence,
    check_tensor,
    describe,
)
from course_lib.architectures._checks import _check_module
from course_lib.architectures.decoder import DecoderLM, next_token_loss
from course_lib.architectures.flamingo import FlamingoLikeModel, flamingo_training_stage
from course_lib.architectures.llava import LlavaLikeModel, llava_training_stage
from course_lib.train import History, train

__all__ = ["train_on", "pretrain_language_model", "train_llava_stage", "train_flamingo"]


def train_on(model: nn.Module, loss_of_batch: Callable[[tuple[Tensor, ...]], Tensor],
             tensors: Sequence[Tensor], *, device: torch.device | str,
             on_step: Callable[[History], None] | None = None, **train_options: object
             ) -> History:
    """``course_lib.train.train`` on ``device``: the model and the tensors are moved first.

    Args:
        model, loss_of_batch, on_step: as for :func:`course_lib.train.train`.
        tensors: aligned tensors (N, ...), on any device.
        device: where to train (``"cpu"``, ``"cuda"``, a :class:`torch.device`).
        train_options: ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``seed``,
            ``progress``.
    """
    _check_module("model", model)
    if not callable(loss_of_batch):
        raise ArgumentTypeError(f"loss_of_batch must be a function of a mini-batch (a tuple of "
                                f"tensors) returning the loss, got {describe(loss_of_batch)}")
    tensors = check_sequence("tensors", tensors, of="aligned tensors", min_length=1)
    tensors = [check_tensor(f"tensors[{i}]", t, kind=None, min_ndim=1)
               for i, t in enumerate(tensors)]
    device = _check_device(device)
    model.to(device)
    moved = [t.to(device) for t in tensors]
    return train(model, loss_of_batch, moved, on_step=on_step, **train_options)


def _check_device(device: object) -> torch.device:
    """``device`` as a torch.device that this machine has."""
    if not isinstance(device, (str, torch.device)):
        raise ArgumentTypeError(f"device must name a torch device (\"cpu\", \"cuda\"), got "
                                f"{describe(device)}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"device must name a torch device, got {device!r}") from error
    available = {"cpu": True, "meta": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"device {str(device)!r} is not available on this machine: use "
                         f"course_lib.env.pick_device() or \"cpu\"")
    if device.type == "cuda" and device.index is not None and \
            device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def pretrain_language_model(language_model: DecoderLM, input_ids: Tensor, labels: Tensor, *,
                            device: torch.device | str, **train_options: object) -> History:
    """Next-token training of a text-only language model (every parameter learns).

    Shape: input_ids, labels (N, T) (labels -100 where nothing is predicted).
    """
    _check_module("language_model", language_model, DecoderLM)
    dims: dict = {}
    input_ids = check_tensor("input_ids", input_ids, shape=("N", "T"), kind="int", dims=dims)
    labels = check_tensor("labels", labels, shape=("N", "T"), kind="int", dims=dims)
    language_model.requires_grad_(True)
    return train_on(language_model, lambda b: next_token_loss(language_model(b[0]), b[1]),
                    [input_ids, labels], device=device, **train_options)


def train_llava_stage(model: LlavaLikeModel, stage: int, images: Tensor, input_ids: Tensor,
                      labels: Tensor, *, device: torch.device | str,
                      **train_options: object) -> History:
    """One of LLaVA's two stages: freeze as :func:`llava_training_stage` says, then train
    with the next-token loss on the labels (give -100 on the user turn).

    Shape: images (N, ...) (or visual features (N, M, vision_dim) when the model has no vision
    encoder), input_ids, labels (N, T) with one ``<image>`` placeholder per row.
    """
    llava_training_stage(model, stage)
    _check_aligned(images, input_ids, labels, "images")
    return train_on(model, lambda b: model.loss(b[0], b[1], b[2]), [images, input_ids, labels],
                    device=device, **train_options)


def _check_aligned(visual: object, input_ids: object, labels: object, visual_name: str) -> None:
    """One image (or feature block) per conversation; ids and labels (N, T) alike."""
    dims: dict = {}
    check_tensor("input_ids", input_ids, shape=("N", "T"), kind="int", dims=dims)
    check_tensor("labels", labels, shape=("N", "T"), kind="int", dims=dims)
    visual = check_tensor(visual_name, visual, min_ndim=2)
    if len(visual) != dims["N"][0]:
        raise ValueError(f"{visual_name} has {len(visual)} rows (N) but input_ids has "
                         f"{dims['N'][0]}: one per conversation")


def train_flamingo(model: FlamingoLikeModel, media: Tensor, input_ids: Tensor, labels: Tensor,
                   *, device: torch.device | str, **train_options: object) -> History:
    """Flamingo's recipe: only the resampler and the gated blocks learn, next-token loss on
    the text. After every step the history logs ``tanh(alpha)`` of each gate
    (``history.logs["attention gate 1"]``, ..., and ``"feed-forward gate 1"``, ...).

    Shape: media (N, I, M, vision_dim) (or images), input_ids, labels (N, T).
    """
    flamingo_training_stage(model)
    _check_aligned(media, input_ids, labels, "media")

    def log_gates(history: History) -> None:
        for number, block in enumerate(model.cross_blocks, start=1):
            history.log(f"attention gate {number}", torch.tanh(block.attn_gate.detach()).item())
            history.log(f"feed-forward gate {number}", torch.tanh(block.ff_gate.detach()).item())

    return train_on(model, lambda b: model.loss(b[0], b[1], b[2]), [media, input_ids, labels],
                    device=device, on_step=log_gates, **train_options)
