"""Projection into the shared width: h = W x + b.

Each modality's encoder has its own width (a ViT 768 or 1024, an audio encoder 192, ...);
a learned linear map sends its vectors to the one width the joint model works in (an LLM's
4096, or 256 in the course's small design), so that tokens of every modality can sit side
by side in one sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    check_allocation,
    check_flag,
    check_int,
    check_tensor,
    to_weights_dtype,
)


def _as_parameter_values(name: str, value: object) -> torch.Tensor:
    """Given W or b: a tensor, numpy array or nested list of finite real numbers, as float32."""
    if isinstance(value, (list, tuple)):
        try:
            value = torch.tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{name} must be a tensor or a nested list of numbers with a "
                             f"rectangular shape ({error})") from None
    value = check_tensor(name, value, kind=None, finite=True)
    if value.is_complex() or value.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {value.dtype}")
    return value


class Projection(nn.Module):
    """A linear map ``h = W x + b`` from ``in_dim`` to ``out_dim`` with checked shapes.

    Args:
        in_dim: width of the encoder's vectors.
        out_dim: the shared width.
        bias: whether to add ``b``.

    Shape:
        features: (..., in_dim), e.g. (B, in_dim) or (B, T, in_dim)
        output: (..., out_dim)
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        check_int("in_dim", in_dim, minimum=1)
        check_int("out_dim", out_dim, minimum=1)
        check_flag("bias", bias)
        check_allocation("in_dim * out_dim", in_dim * out_dim, MAX_ELEMENTS, "weights")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.linear = nn.Linear(in_dim, out_dim, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        """W, shape (out_dim, in_dim)."""
        return self.linear.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """b, shape (out_dim,), or None."""
        return self.linear.bias

    @torch.no_grad()
    def set_parameters(self, weight, bias=None) -> Projection:
        """Copy given values into W (out_dim, in_dim) and b (out_dim,); returns ``self``.

        Values may be tensors, numpy arrays or nested lists of finite real numbers.
        """
        weight = _as_parameter_values("weight", weight).to(self.linear.weight.dtype)
        if tuple(weight.shape) != (self.out_dim, self.in_dim):
            raise ValueError(
                f"weight must have shape (out_dim, in_dim) = {(self.out_dim, self.in_dim)}, "
                f"got {tuple(weight.shape)}"
            )
        self.linear.weight.copy_(weight)
        if bias is not None:
            if self.linear.bias is None:
                raise ValueError("bias was given, but this Projection was built with bias=False")
            bias = _as_parameter_values("bias", bias).to(self.linear.bias.dtype)
            if tuple(bias.shape) != (self.out_dim,):
                raise ValueError(
                    f"bias must have shape ({self.out_dim},), got {tuple(bias.shape)}"
                )
            self.linear.bias.copy_(bias)
        return self

    @classmethod
    def from_parameters(cls, weight, bias=None) -> Projection:
        """A Projection whose W and b are the given values (W has shape (out_dim, in_dim))."""
        weight = _as_parameter_values("weight", weight).to(torch.float32)
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-D (out_dim, in_dim), got {tuple(weight.shape)}")
        out_dim, in_dim = weight.shape
        return cls(in_dim, out_dim, bias=bias is not None).set_parameters(weight, bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = to_weights_dtype("features", features, self, kind="float")
        if features.ndim < 1 or features.shape[-1] != self.in_dim:
            raise ValueError(
                f"features has width {features.shape[-1] if features.ndim else None}, but this "
                f"Projection was built for in_dim={self.in_dim} (shape {tuple(features.shape)})"
            )
        return self.linear(features)
