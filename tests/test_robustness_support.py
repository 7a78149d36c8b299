"""Shared tools of the robustness suite (tests/test_robustness_*.py).

* :func:`covers` records which public names of ``course_lib`` a property test exercises;
  ``test_robustness_api.py`` fails when a public name is covered by none.
* :func:`assert_rejects` checks the promise for one bad input: a ``ValueError`` or
  ``TypeError`` whose message names the argument, raised within a second, without raising
  the process's peak memory by more than a few hundred MB.
* Strategies (hypothesis) for wrong arguments (wrong kinds, out-of-range sizes, NaN, wrong
  dtypes and ranks) and for valid edge cases (batch 1, empty batches, float64, numpy arrays,
  non-contiguous tensors).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

COVERED: dict[str, list[str]] = {}  # "course_lib.text.BPETokenizer.encode" -> its tests
MAX_SECONDS = 1.0
MAX_EXTRA_PEAK_MB = 300


def qualified_name(target: Any) -> str:
    """``module.Name`` or ``module.Class.method`` of a function, class or method."""
    function = getattr(target, "__func__", target)  # a classmethod reached through its class
    name = function.__qualname__
    if "<locals>" in name:  # a decorated function that copied only its __name__
        name = function.__name__
    return f"{function.__module__}.{name}"


def covers(*targets: Any) -> Callable:
    """Mark a test as a robustness property of the public functions, classes and methods
    given (the objects themselves, so that a module that moves keeps its coverage)."""

    def mark(test: Callable) -> Callable:
        for target in targets:
            COVERED.setdefault(qualified_name(target), []).append(
                f"{test.__module__}.{test.__name__}")
        return test

    return mark


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def assert_rejects(call: Callable[..., Any], argument: str, *args: Any, **kwargs: Any
                   ) -> Exception:
    """``call(*args, **kwargs)`` must raise ValueError/TypeError naming ``argument``, fast."""
    peak, start = _peak_mb(), time.perf_counter()
    try:
        call(*args, **kwargs)
    except (ValueError, TypeError) as error:
        caught = error
    except Exception as error:  # noqa: BLE001 - any other error breaks the promise
        pytest.fail(f"{type(error).__name__} (not ValueError/TypeError) for bad {argument}: "
                    f"{error}")
    else:
        pytest.fail(f"no error for a bad {argument}: {_short(args, kwargs)}")
    seconds = time.perf_counter() - start
    if seconds >= MAX_SECONDS:  # a first call may pay for lazy imports; time a second one
        start = time.perf_counter()
        with pytest.raises((ValueError, TypeError)):
            call(*args, **kwargs)
        seconds = time.perf_counter() - start
    assert seconds < MAX_SECONDS, f"rejecting a bad {argument} took {seconds:.2f} s"
    grew = _peak_mb() - peak
    assert grew < MAX_EXTRA_PEAK_MB, f"rejecting a bad {argument} raised the peak by {grew} MB"
    assert argument in str(caught), f"the message does not name {argument!r}: {caught}"
    return caught


def _short(args: tuple, kwargs: dict) -> str:
    return ", ".join([f"{a!r:.40}" for a in args] + [f"{k}={v!r:.40}" for k, v in kwargs.items()])


# ----------------------------------------------------------------------------- wrong arguments
def not_an_int() -> st.SearchStrategy:
    """Values that are not integers: bools, floats (3.0 too), strings, None, lists, tensors."""
    return st.one_of(
        st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
        st.none(), st.lists(st.integers(0, 9), max_size=2), st.complex_numbers(max_magnitude=9),
        st.integers(1, 9).map(torch.tensor), st.integers(1, 9).map(float),
    )


def int_outside(minimum: int | None = None, maximum: int | None = None) -> st.SearchStrategy:
    """Integers below ``minimum`` or above ``maximum`` (huge ones included)."""
    options = []
    if minimum is not None:
        options.append(st.integers(-10**12, minimum - 1))
    if maximum is not None:
        options.append(st.integers(maximum + 1, 10**18))
        options.append(st.sampled_from([10**9, 10**12, 2**63 - 1]).filter(lambda v: v > maximum))
    return st.one_of(*options)


def bad_int(minimum: int | None = None, maximum: int | None = None) -> st.SearchStrategy:
    return st.one_of(not_an_int(), int_outside(minimum, maximum))


def not_a_number() -> st.SearchStrategy:
    """Values that are not finite real numbers: NaN, inf, bools, strings, None, complex."""
    return st.one_of(
        st.sampled_from([float("nan"), float("inf"), float("-inf")]), st.booleans(),
        st.text(max_size=3), st.none(), st.complex_numbers(max_magnitude=9).filter(
            lambda z: z.imag != 0), st.lists(st.floats(0, 1), min_size=1, max_size=2),
    )


def not_a_tensor() -> st.SearchStrategy:
    return st.one_of(st.none(), st.text(max_size=3), st.integers(), st.floats(allow_nan=False),
                     st.lists(st.floats(-1, 1), max_size=3), st.dictionaries(st.text(max_size=2),
                                                                              st.integers()))


def tensor_of_dtype(shape: Sequence[int], dtypes: Sequence[torch.dtype]) -> st.SearchStrategy:
    """A tensor of the given shape with one of ``dtypes`` (values small integers)."""
    return st.sampled_from(list(dtypes)).map(
        lambda dtype: torch.ones(tuple(shape)).to(dtype))


NOT_FLOAT = (torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64)
NOT_INT = (torch.float32, torch.float64, torch.bool, torch.complex64)


def wrong_rank(good_ndims: Sequence[int], side: int = 2) -> st.SearchStrategy:
    """Float tensors whose number of dimensions is not one of ``good_ndims``."""
    ranks = [r for r in range(6) if r not in good_ndims]
    return st.sampled_from(ranks).map(lambda r: torch.zeros((side,) * r))


# ----------------------------------------------------------------------------- valid edge inputs
LAYOUTS = ("contiguous", "transposed", "strided", "numpy")


@st.composite
def float_tensors(draw: Callable, shape: Sequence[int], layouts: Sequence[str] = LAYOUTS,
                  dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64)) -> Any:
    """A float tensor (or numpy array) of ``shape``: float32 or float64, contiguous or not."""
    shape = tuple(shape)
    dtype = draw(st.sampled_from(list(dtypes)))
    layout = draw(st.sampled_from(list(layouts)))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    if layout == "transposed" and len(shape) >= 2:
        base = torch.randn(*shape[:-2], shape[-1], shape[-2], generator=generator)
        tensor = base.transpose(-1, -2)
    elif layout == "strided" and len(shape) >= 1:
        tensor = torch.randn(*shape[:-1], 2 * shape[-1], generator=generator)[..., ::2]
    else:
        tensor = torch.randn(shape, generator=generator)
    tensor = tensor.to(dtype)
    return tensor.numpy() if layout == "numpy" else tensor


def as_float32(value: Any) -> torch.Tensor:
    return torch.as_tensor(value).to(torch.float32).contiguous()


def assert_close_to_float32(got: torch.Tensor, expected: torch.Tensor) -> None:
    """A float64 / non-contiguous input gives (to float32 rounding) the float32 answer."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def numpy_scalars() -> st.SearchStrategy:
    """Ways of writing one accuracy: Python, numpy and torch scalars."""
    return st.sampled_from([float, np.float32, np.float64, lambda v: torch.tensor(v),
                            lambda v: np.array(v)])
