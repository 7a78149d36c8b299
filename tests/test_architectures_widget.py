"""Headless tests of the gate explorer view (course_lib.widgets.gate_explorer)."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.widgets import benchmark_factories
from course_lib.widgets._base import iter_controls
from course_lib.widgets.gate_explorer import BENCHMARK, example_gate_inputs, gate_explorer


def test_explorer_starts_closed_with_the_hidden_state_unchanged():
    widget = gate_explorer()
    hidden, _ = example_gate_inputs()
    assert list(widget.figure.data[1].y) == [0.0]
    assert list(widget.figure.data[3].y) == pytest.approx(hidden.tolist())
    assert "tanh(alpha) = <b>0.0000</b>" in widget.readout.value


def test_moving_the_slider_to_one_lets_0_7616_of_the_update_in():
    hidden, update = torch.tensor([1.0, -1.0, 0.5]), torch.tensor([2.0, 0.0, -1.0])
    widget = gate_explorer(hidden, update)
    widget.slider.value = 1.0
    gate = math.tanh(1.0)
    assert list(widget.figure.data[1].x) == [1.0]
    assert widget.figure.data[1].y[0] == pytest.approx(gate)
    expected = [h + gate * u for h, u in zip(hidden.tolist(), update.tolist(), strict=True)]
    assert list(widget.figure.data[3].y) == pytest.approx(expected)
    assert "0.7616" in widget.readout.value and "76.16 %" in widget.readout.value
    widget.slider.value = -2.0
    assert "sign flipped" in widget.readout.value


def test_example_inputs_come_from_a_real_block_and_leave_the_global_seed_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    hidden, update = example_gate_inputs(dim=8)
    assert hidden.shape == update.shape == (8,)
    assert update.abs().sum() > 0
    assert torch.equal(torch.rand(3), expected)


def test_benchmark_builds_the_widget_and_is_discovered():
    assert benchmark_factories()["gate_explorer"] is BENCHMARK
    widget = BENCHMARK()
    assert [type(c).__name__ for c in iter_controls(widget)] == ["FloatSlider"]
