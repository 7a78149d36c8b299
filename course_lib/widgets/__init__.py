"""Thin ipywidgets views over pure functions that live in the topical modules.

Each view module here defines a factory that builds the widget and a ``BENCHMARK``: a
zero-argument callable returning a freshly built widget, which ``tools/bench.py`` uses to
time every slider update. Logic (numbers, arrays, figure data) never lives here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import ipywidgets


def benchmark_factories() -> dict[str, Callable[[], ipywidgets.Widget]]:
    """Every view module's ``BENCHMARK`` factory, keyed by the module's name."""
    factories = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        factory = getattr(module, "BENCHMARK", None)
        if factory is not None:
            factories[info.name] = factory
    return factories
