"""Argument checks of the widget factories: a wrong argument fails at once, by name, before
any figure is built (through the course's one validation layer, :mod:`course_lib._validation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_lib._validation import ArgumentTypeError, check_number, check_tensor, describe
from course_lib.text import BPETokenizer

__all__: list[str] = []  # private module


def check_tokenizer(tokenizer: Any) -> BPETokenizer | None:
    """None (the widget trains its default) or a course BPE tokenizer."""
    if tokenizer is not None and not isinstance(tokenizer, BPETokenizer):
        raise ArgumentTypeError(f"tokenizer must be a course_lib.text.BPETokenizer (or None for "
                                f"the default), got {describe(tokenizer)}")
    return tokenizer


def check_optional_text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string or None, got {describe(value)}")
    return value


def check_slider_value(name: str, value: Any, low: float, high: float) -> float:
    """A finite number inside a slider's range [low, high]."""
    return check_number(name, value, minimum=low, maximum=high)


def check_grey_image(name: str, image: Any) -> torch.Tensor:
    """A grey image (H, W) or (1, H, W) of finite floats, as an (H, W) tensor (its dtype kept)."""
    image = check_tensor(name, image, ndim=(2, 3), finite=True, nonempty=True)
    if image.dim() == 3:
        if image.shape[0] != 1:
            raise ValueError(f"{name} must have shape (H, W) or (1, H, W) (one grey channel), "
                             f"got {tuple(image.shape)}")
        image = image[0]
    return image.detach()


def as_float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    """A finite float array of ``ndim`` dimensions (a tensor or numpy array) as numpy."""
    tensor = check_tensor(name, value, ndim=ndim, finite=True)
    return tensor.detach().cpu().numpy()
