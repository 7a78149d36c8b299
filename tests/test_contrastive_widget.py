"""Headless tests of the temperature explorer view (course_lib.widgets.temperature_explorer)."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.contrastive import WORKED_SIMILARITY
from course_lib.widgets import benchmark_factories
from course_lib.widgets._base import iter_controls
from course_lib.widgets.temperature_explorer import BENCHMARK, temperature_explorer


def softmax_by_hand(values, temperature):
    exps = [math.exp(v / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def bar_heights(widget):
    n = len(WORKED_SIMILARITY)
    return [list(widget.figure.data[i].y) for i in range(n)]


def test_bars_show_each_row_softmax_at_the_starting_temperature():
    widget = temperature_explorer()
    expected = [softmax_by_hand(row, 0.1) for row in WORKED_SIMILARITY]
    for got, want in zip(bar_heights(widget), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-7)
    assert "0.0051227" in widget.readout.value


def test_moving_the_slider_flattens_the_softmax_and_moves_the_loss_marker():
    widget = temperature_explorer()
    widget.slider.value = 1.0
    expected = [softmax_by_hand(row, 1.0) for row in WORKED_SIMILARITY]
    for got, want in zip(bar_heights(widget), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-7)
    assert max(bar_heights(widget)[0]) < 0.6  # flat compared with 0.99875 at tau = 0.1
    marker = widget.figure.data[-1]
    assert list(marker.x) == [1.0]
    by_hand = sum(
        -math.log(softmax_by_hand(row, 1.0)[i]) for i, row in enumerate(WORKED_SIMILARITY)
    ) / 3
    assert marker.y[0] > by_hand * 0.99  # symmetric loss is near the rows' at this tau
    assert "tau = 1.000" in widget.readout.value


def test_columns_direction_shows_the_column_softmax():
    widget = temperature_explorer()
    widget.direction.value = "columns"
    columns = [[row[j] for row in WORKED_SIMILARITY] for j in range(3)]
    expected = [softmax_by_hand(column, 0.1) for column in columns]
    for got, want in zip(bar_heights(widget), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-7)
    assert widget.figure.data[0].name == "text 1"


def test_explorer_accepts_another_similarity_matrix():
    similarity = torch.tensor([[0.5, 0.4], [0.1, 0.6]])
    widget = temperature_explorer(similarity, temperature=0.5, modality_a="audio",
                                  modality_b="image")
    assert list(widget.figure.data[0].y) == pytest.approx(softmax_by_hand([0.5, 0.4], 0.5))
    assert widget.figure.data[0].name == "audio 1"


def test_benchmark_is_discovered_and_every_control_changes_the_figure():
    assert benchmark_factories()["temperature_explorer"] is BENCHMARK
    widget = BENCHMARK()
    controls = list(iter_controls(widget))
    assert {type(c).__name__ for c in controls} == {"FloatLogSlider", "ToggleButtons"}
    before = bar_heights(widget)
    widget.slider.value = 0.5
    after_slider = bar_heights(widget)
    assert after_slider != before
    widget.direction.value = "columns"
    assert bar_heights(widget) != after_slider
