"""What a model costs and what it trains: counts on the ``meta`` device, ``requires_grad`` switches.

:func:`count_on_meta` sizes a model on PyTorch's ``meta`` device (no memory allocated);
:func:`set_trainable` freezes everything but the parts a training stage updates;
:func:`sequence_lengths` compares the language model's sequence under LLaVA and Flamingo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from course_lib._validation import ArgumentTypeError, check_int, describe

# One definition, in the training module; importable from here too, as before.
from course_lib.train import count_parameters

__all__ = ["count_parameters", "ModelSize", "count_on_meta", "set_trainable", "sequence_lengths"]


@dataclass(frozen=True)
class ModelSize:
    """A model's parameter count and what its weights occupy at each precision.

    ``by_part`` counts the parameters of each top-level child module.
    """

    parameters: int
    by_part: dict[str, int]

    def __post_init__(self) -> None:
        check_int("parameters", self.parameters, minimum=0)
        if not isinstance(self.by_part, Mapping):
            raise ArgumentTypeError(f"by_part must be a dict of part name -> parameter count, "
                                    f"got {describe(self.by_part)}")
        for name, count in self.by_part.items():
            check_int(f"by_part[{name!r}]", count, minimum=0)

    def weight_bytes(self, dtype: torch.dtype = torch.float16) -> int:
        """Bytes for the weights alone stored as ``dtype`` (fp32: 4 per parameter)."""
        if not isinstance(dtype, torch.dtype):
            raise ArgumentTypeError(f"dtype must be a torch.dtype such as torch.float16, got "
                                    f"{describe(dtype)}")
        return self.parameters * dtype.itemsize

    def training_bytes(self) -> int:
        """Mixed-precision training with Adam, before activations: fp16 weights (2) + fp16
        gradients (2) + fp32 master weights (4) + Adam's two moments (4 + 4) = 16 bytes per
        parameter."""
        return 16 * self.parameters


def count_on_meta(build: Callable[[], nn.Module]) -> ModelSize:
    """Build a model on PyTorch's ``meta`` device and count it; no weight memory is allocated.

    On ``meta`` a tensor has a shape and a dtype but no storage, so a 6.7-billion-parameter
    model builds in a fraction of a second on a laptop.

    Args:
        build: a zero-argument function returning the model (called inside
            ``with torch.device("meta")``).
    """
    if not callable(build) or isinstance(build, nn.Module):
        raise ArgumentTypeError(f"build must be a zero-argument function that builds the model "
                                f"(e.g. lambda: DecoderLM(...)), got {type(build).__name__}")
    with torch.device("meta"):
        model = build()
    if not isinstance(model, nn.Module):
        raise ValueError(f"build must return an nn.Module, returned {type(model).__name__}")
    real = [name for name, p in model.named_parameters() if not p.is_meta]
    if real:
        raise ValueError(f"build allocated real parameters (e.g. {real[0]}): create them "
                         "without an explicit device so that they land on 'meta'")
    by_part = {name: count_parameters(child) for name, child in model.named_children()}
    return ModelSize(count_parameters(model), by_part)


def set_trainable(model: nn.Module, trainable: Iterable[nn.Module]) -> int:
    """Freeze every parameter of ``model`` except those of the ``trainable`` submodules.

    Returns:
        The number of trainable parameters afterwards.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module, got {describe(model)}")
    if isinstance(trainable, nn.Module):  # one submodule (or a ModuleList): the same thing
        trainable = [trainable]
    elif isinstance(trainable, (str, bytes)) or not isinstance(trainable, Iterable):
        raise ArgumentTypeError(f"trainable must be a list of submodules of model, got "
                                f"{describe(trainable)}")
    trainable = list(trainable)
    inside = {id(module) for module in model.modules()}
    for module in trainable:
        if not isinstance(module, nn.Module) or id(module) not in inside:
            raise ValueError(f"trainable must list submodules of model, got "
                             f"{type(module).__name__} that is not one")
    model.requires_grad_(False)
    for module in trainable:
        module.requires_grad_(True)
    return count_parameters(model, trainable_only=True)


def sequence_lengths(text_tokens: int, num_images: int, tokens_per_image: int) -> dict[str, int]:
    """Language-model sequence length with LLaVA-style splicing (grows with each image) and
    Flamingo-style cross-attention (images stay outside the text sequence)."""
    text_tokens = check_int("text_tokens", text_tokens, minimum=0)
    num_images = check_int("num_images", num_images, minimum=0)
    tokens_per_image = check_int("tokens_per_image", tokens_per_image, minimum=0)
    return {"llava": text_tokens + num_images * tokens_per_image, "flamingo": text_tokens}
