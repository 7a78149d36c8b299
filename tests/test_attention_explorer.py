"""The explorer's pure functions and both views, driven headless."""

import math
import time

import pytest
import torch

from course_lib.attention import (
    attention_entropy,
    attention_map_over_image,
    explore_attention,
)
from course_lib.widgets import attention_explorer as view_module
from course_lib.widgets._base import iter_controls


def hand_softmax(row):
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def test_query_at_angle_zero_reproduces_the_worked_example_row():
    state = explore_attention(angle_deg=0.0, length=1.0, temperature=1.0)
    a = 1 / math.sqrt(2)
    expected = hand_softmax([a, 0.0, a])
    assert state.weights.tolist() == pytest.approx(expected, abs=1e-6)
    assert state.output.tolist() == pytest.approx([0.5813, 0.3588], abs=1e-4)
    entropy = -sum(w * math.log2(w) for w in expected)
    assert state.entropy_bits == pytest.approx(entropy, abs=1e-5)


def test_temperature_sharpens_or_flattens_the_weights():
    cold = explore_attention(45.0, 2.0, 0.1)
    warm = explore_attention(45.0, 2.0, 10.0)
    assert cold.weights[0] > 0.99  # k1 = [1, 1] points exactly along the query
    assert cold.entropy_bits < 0.1 < warm.entropy_bits
    assert warm.entropy_bits == pytest.approx(math.log2(3), abs=0.05)
    assert cold.scale == pytest.approx(1 / (0.1 * math.sqrt(2)))


def test_a_zero_length_query_attends_uniformly():
    state = explore_attention(30.0, 0.0, 1.0)
    torch.testing.assert_close(state.weights, torch.full((3,), 1 / 3))
    assert state.entropy_bits == pytest.approx(state.max_entropy_bits)


def test_attention_entropy_of_one_hot_is_zero_and_of_uniform_is_log2_m():
    weights = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    torch.testing.assert_close(attention_entropy(weights), torch.tensor([0.0, 2.0]))


def test_attention_map_over_image_reshapes_patch_weights_row_by_row():
    weights = torch.arange(2 * 3 * 7, dtype=torch.float32).reshape(2, 3, 7)  # 1 prefix + 2x3
    attention_map = attention_map_over_image(weights, query_index=1, head=1, grid=(2, 3),
                                             num_prefix_tokens=1)
    assert attention_map.tolist() == [[29.0, 30.0, 31.0], [32.0, 33.0, 34.0]]


def test_bad_explorer_inputs_raise_naming_the_argument():
    with pytest.raises(ValueError, match="temperature"):
        explore_attention(0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="length"):
        explore_attention(0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="keys"):
        explore_attention(0.0, 1.0, 1.0, keys=torch.ones(3, 4))
    weights = torch.ones(2, 3, 4) / 4
    with pytest.raises(ValueError, match="grid"):
        attention_map_over_image(weights, 0, 0, grid=(3, 3))
    with pytest.raises(ValueError, match="query_index"):
        attention_map_over_image(weights, 5, 0, grid=(2, 2))
    with pytest.raises(ValueError, match="head"):
        attention_map_over_image(weights, 0, 2, grid=(2, 2))
    with pytest.raises(ValueError, match="token_labels"):
        view_module.image_attention_viewer(torch.zeros(4, 4), weights, ["a"], (2, 2))


def test_explorer_view_updates_its_figure_when_sliders_move():
    root = view_module.attention_explorer()
    angle, length, temperature = list(iter_controls(root))
    figure = root.figure
    angle.value, length.value, temperature.value = 45.0, 2.0, 0.1
    expected = explore_attention(45.0, 2.0, 0.1)
    assert list(figure.data[2].z[0]) == pytest.approx(expected.weights.tolist())
    assert figure.data[4].x[0] == pytest.approx(float(expected.output[0]))
    assert figure.data[1].x[1] == pytest.approx(2.0 * math.cos(math.radians(45.0)))
    assert f"entropy = {expected.entropy_bits:.2f} bits" in figure.layout.title.text


def test_image_viewer_shows_the_chosen_token_and_head():
    weights = torch.softmax(torch.randn(3, 2, 16), dim=-1)
    root = view_module.image_attention_viewer(torch.rand(1, 32, 32), weights, ["cat", "dog"],
                                              grid=(4, 4))
    token, head = list(iter_controls(root))
    token.value, head.value = 1, 2
    expected = weights[2, 1].reshape(4, 4)
    torch.testing.assert_close(torch.tensor(root.figure.data[1].z), expected)
    assert "'dog', head 2" in root.figure.layout.title.text


def test_every_control_of_the_benchmark_updates_within_50_ms():
    root = view_module.BENCHMARK()
    for control in iter_controls(root):
        options = getattr(control, "options", None)
        if options:
            new_value = options[-1][1]
        elif hasattr(control, "base"):  # a log slider: min and max are exponents
            new_value = control.base ** control.max
        else:
            new_value = control.max
        assert new_value != control.value
        start = time.perf_counter()
        control.value = new_value
        elapsed_ms = (time.perf_counter() - start) * 1000
        # Generous: the budget is 50 ms on a quiet machine; this one is shared.
        assert elapsed_ms < 150, f"{control.description} took {elapsed_ms:.1f} ms"
