"""Headless tests of the gate explorer (course_lib.widgets.gate_explorer) and its sweep."""

from __future__ import annotations

import pytest
import torch

from course_lib.architectures import DecoderLM, FlamingoLikeModel, gate_sweep
from course_lib.widgets import benchmark_factories
from course_lib.widgets._base import iter_controls
from course_lib.widgets.gate_explorer import BENCHMARK, example_gate_sweep, gate_explorer


def test_sweep_at_scale_zero_is_the_language_model_alone_and_at_one_the_trained_model():
    torch.manual_seed(0)
    model = FlamingoLikeModel(None, 8, DecoderLM(20, 16, 2, 4, 32), num_latents=4,
                              resampler_depth=1, num_heads=4, media_token_id=19)
    with torch.no_grad():
        for block in model.cross_blocks:
            block.attn_gate.fill_(2.0)
            block.ff_gate.fill_(1.0)
    prompts = torch.randint(0, 19, (16, 4))
    prompts[:, 0] = 19
    media = torch.randn(16, 5, 8)
    answers = torch.randint(0, 10, (16,))
    sweep = gate_sweep(model, media, prompts, answers, torch.arange(10),
                       tuple(str(i) for i in range(10)), example=3,
                       scales=torch.tensor([0.0, 0.5, 1.0]))
    with torch.no_grad():
        alone = model.language_model(prompts)[:, -1]
        trained = model(media, prompts)[:, -1]
    for index, last in ((0, alone), (2, trained)):
        accuracy = (last.argmax(-1) == answers).float().mean()
        assert float(sweep.accuracy[index]) == pytest.approx(float(accuracy))
        expected = last[3].softmax(-1)[:10]
        torch.testing.assert_close(sweep.probabilities[index], expected)
    assert sweep.attention_alphas.tolist() == [2.0, 2.0]
    assert sweep.index(0.4) == 1 and sweep.example_answer == str(int(answers[3]))
    with pytest.raises(ValueError, match="answer_ids"):
        gate_sweep(model, media, prompts, answers[:3], torch.arange(10), tuple("0123456789"))
    with pytest.raises(ValueError, match="candidate"):
        gate_sweep(model, media, prompts, answers, torch.arange(10), ("a",))
    with pytest.raises(ValueError, match="example"):
        gate_sweep(model, media, prompts, answers, torch.arange(10), tuple("0123456789"),
                   example=16)
    with pytest.raises(ValueError, match="scale"):
        sweep.index(float("nan"))


def test_explorer_starts_closed_and_the_slider_moves_accuracy_point_and_bars():
    sweep = example_gate_sweep()
    widget = gate_explorer(sweep)
    assert list(widget.figure.data[1].x) == [0.0]
    assert list(widget.figure.data[1].y) == pytest.approx([float(sweep.accuracy[0])])
    assert list(widget.figure.data[2].y) == pytest.approx(sweep.probabilities[0].tolist())
    assert "alpha scale = 0.00" in widget.readout.value
    assert "the frozen language model alone" in widget.readout.value
    widget.slider.value = 1.0
    last = len(sweep.scales) - 1
    assert list(widget.figure.data[1].x) == [1.0]
    assert list(widget.figure.data[2].y) == pytest.approx(sweep.probabilities[last].tolist())
    assert f"held-out accuracy <b>{float(sweep.accuracy[last]):.3f}</b>" in widget.readout.value
    assert "the trained gates" in widget.readout.value
    assert "gate 2: alpha +1.500, tanh +0.905" in widget.readout.value  # tanh(1.5) = 0.9051


def test_example_sweep_leaves_the_global_seed_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    example_gate_sweep()
    assert torch.equal(torch.rand(3), expected)


def test_benchmark_builds_the_widget_and_is_discovered():
    assert benchmark_factories()["gate_explorer"] is BENCHMARK
    widget = BENCHMARK()
    assert [type(c).__name__ for c in iter_controls(widget)] == ["FloatSlider"]
