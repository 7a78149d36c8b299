"""Wild arguments for the robustness suite: any value in any parameter.

:func:`wild_calls` draws keyword arguments of every kind (None, bools, huge and negative
integers, NaN, strings, lists, dicts, numpy scalars, tensors) for a few parameters of a
function; :func:`assert_result_or_named_error` checks the promise for one such call: a
result, or a ``ValueError``/``TypeError`` that names an argument, within a second.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

WILD = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=4),
    st.lists(st.integers(-3, 3), max_size=2), st.just({}), st.just(np.int64(3)),
    st.just(np.float32(0.5)), st.just(torch.zeros(2)), st.just(torch.tensor(2)),
    st.sampled_from([10**308, 1e308, 2**63, 10**6, 10**9, -1, 0]),
)


def wild_calls(function: Callable[..., Any], skip: tuple[str, ...] = ()) -> st.SearchStrategy:
    """Dicts of 1 to 3 of ``function``'s parameters, each given a wild value."""
    names = [n for n, p in inspect.signature(function).parameters.items()
             if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return st.dictionaries(st.sampled_from(names), WILD, min_size=1, max_size=3)


def assert_result_or_named_error(function: Callable[..., Any], arguments: dict[str, Any],
                                 *, fixed: dict[str, Any] | None = None) -> Any:
    """``function(**fixed, **arguments)`` returns, or raises ValueError/TypeError naming one
    of its parameters, within a second (never another exception, never a hang)."""
    call = {**(fixed or {}), **arguments}
    names = list(inspect.signature(function).parameters)
    start = time.perf_counter()
    try:
        result = function(**call)
    except (ValueError, TypeError) as error:
        message = str(error)
        if "required positional argument" in message:
            return None
        assert any(name in message for name in names), \
            f"{function.__qualname__}: the message names no argument: {message}"
        result = error
    except Exception as error:  # noqa: BLE001 - any other error breaks the promise
        pytest.fail(f"{function.__qualname__}({call!r:.200}) raised {type(error).__name__}: "
                    f"{error}")
    seconds = time.perf_counter() - start
    assert seconds < 1.0, f"{function.__qualname__} took {seconds:.2f} s on {call!r:.200}"
    return result
