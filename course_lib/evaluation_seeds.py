"""One recipe trained with several seeds: every metric as a mean with its t interval.

Part of :mod:`course_lib.evaluation` (import from there).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_lib._validation import (
    MAX_LOOP,
    ArgumentTypeError,
    check_allocation,
    check_choice,
    check_int,
    check_sequence,
    check_tensor,
    check_text,
    describe,
)
from course_lib.evaluation_intervals import (
    Estimate,
    _as_number,
    _check_confidence,
    mean_interval,
)

__all__ = ["RunSummary", "repeat_runs"]


@dataclass(frozen=True)
class RunSummary(Mapping[str, Estimate]):
    """Results of one recipe trained once per seed: one :class:`Estimate` per metric.

    It is a read-only mapping ``metric name -> Estimate``; a run that returned a bare float is
    stored under the key ``"value"``. ``summary["accuracy"].mean``, ``.low``, ``.high``,
    ``.std`` and ``.values`` give the per-key mean, interval, spread and raw values.
    """

    seeds: tuple[int, ...]
    estimates: dict[str, Estimate]

    def __getitem__(self, key: str) -> Estimate:
        try:
            return self.estimates[key]
        except KeyError:
            raise KeyError(
                f"no metric {key!r} in this summary; it has {sorted(self.estimates)}"
            ) from None

    def __iter__(self):
        return iter(self.estimates)

    def __len__(self) -> int:
        return len(self.estimates)

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, tuple) or not all(
                isinstance(seed, int) and not isinstance(seed, bool) for seed in self.seeds):
            raise ArgumentTypeError(f"seeds must be a tuple of integers, got "
                                    f"{describe(self.seeds)}")
        if not isinstance(self.estimates, dict) or not all(
                isinstance(key, str) and isinstance(value, Estimate)
                for key, value in self.estimates.items()):
            raise ArgumentTypeError(f"estimates must be a dict of metric name -> Estimate, got "
                                    f"{describe(self.estimates)}")

    def _metric(self, key: str) -> Estimate:
        check_text("key", key)
        return self[check_choice("key", key, tuple(self.estimates))]

    def mean(self, key: str = "value") -> float:
        """The mean over seeds of metric ``key``."""
        return self._metric(key).mean

    def std(self, key: str = "value") -> float:
        """The standard deviation over seeds (ddof = 1) of metric ``key``."""
        return self._metric(key).std

    def interval(self, key: str = "value") -> tuple[float, float]:
        """The t interval ``(low, high)`` of metric ``key``."""
        metric = self._metric(key)
        return metric.low, metric.high

    def raw(self, key: str = "value") -> tuple[float, ...]:
        """The per-seed values of metric ``key``, in the order of :attr:`seeds`."""
        return self._metric(key).values


def repeat_runs(
    run: Callable[[int], float | Mapping[str, float]],
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    confidence: float = 0.95,
) -> RunSummary:
    """Call ``run(seed)`` once per seed and summarise each returned metric over seeds.

    Args:
        run: trains and evaluates one model from ``seed``; returns a float or a mapping
            ``metric name -> float`` (the same keys for every seed).
        seeds: at least two distinct seeds; five is the course's default.
        confidence: coverage of the Student-t interval.

    Raises:
        ValueError / TypeError: naming ``seeds`` unless they are at least two distinct
            non-negative integers; naming ``run`` if it is not callable, or returns something
            other than a number or a mapping of numbers, different keys for different seeds,
            or a non-finite value; naming ``confidence`` unless it is in (0, 1).
    """
    if not callable(run):
        raise ArgumentTypeError(f"run must be a function of the seed, got {describe(run)}")
    if isinstance(seeds, (torch.Tensor, np.ndarray)):
        seeds = check_tensor("seeds", seeds, kind="int", ndim=1).tolist()
    if isinstance(seeds, range):
        seeds = list(seeds)
    seeds = check_sequence("seeds", seeds, of="integer seeds")
    check_allocation("seeds", len(seeds), MAX_LOOP, "iterations")
    seeds = tuple(check_int(f"seeds[{i}]", s, minimum=0) for i, s in enumerate(seeds))
    if len(seeds) < 2:
        raise ValueError(f"seeds needs at least 2 seeds to measure seed noise, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    confidence = _check_confidence(confidence)
    collected: dict[str, list[float]] = {}
    keys: tuple[str, ...] | None = None
    for seed in seeds:
        result = run(seed)
        if isinstance(result, Mapping):
            metrics = dict(result)
        elif isinstance(result, (numbers.Real, np.integer, np.floating, torch.Tensor,
                                 np.ndarray)) and not isinstance(result, (bool, np.bool_)):
            metrics = {"value": result}
        else:
            raise ArgumentTypeError(f"run must return a number or a mapping metric name -> "
                                    f"number, got {describe(result)} for seed {seed}")
        if keys is None:
            keys = tuple(metrics)
            if not keys:
                raise ValueError("run returned an empty mapping; return a float or metrics")
        elif tuple(metrics) != keys:
            raise ValueError(
                f"run must return the same metrics for every seed: seed {seeds[0]} gave "
                f"{list(keys)}, seed {seed} gave {list(metrics)}"
            )
        for key, value in metrics.items():
            if not isinstance(key, str):
                raise ArgumentTypeError(f"run must name its metrics with strings, got the key "
                                        f"{describe(key)} for seed {seed}")
            number = _as_number(f"run's {key} (seed {seed})", value)
            if not math.isfinite(number):
                raise ValueError(f"run returned a non-finite {key}={number} for seed {seed}")
            collected.setdefault(key, []).append(number)
    estimates = {key: mean_interval(vals, confidence) for key, vals in collected.items()}
    return RunSummary(seeds, estimates)
