"""Gate explorer: close and reopen a trained Flamingo-like model's gates and watch vision flow in.

The numbers come from :func:`course_lib.architectures.gate_sweep`: every gate's alpha is
scaled by the slider's value s (0 = every gate closed, the frozen language model alone; 1 = the
trained gates), and the trained model answers held-out questions at each setting. This module
only draws them: held-out accuracy against s, and one example's probability of each answer.
"""

from __future__ import annotations

import ipywidgets
import torch
from plotly.subplots import make_subplots

from course_lib._validation import ArgumentTypeError, check_int, check_number, describe
from course_lib.architectures import (
    DecoderLM,
    FlamingoLikeModel,
    GateSweep,
    gate_sweep,
)
from course_lib.widgets._base import as_widget, live_figure, refresh_static
from course_lib.widgets._picture import pictured


def example_gate_sweep(seed: int = 0) -> GateSweep:
    """A sweep of a tiny Flamingo-like model with hand-opened gates and random weights (for
    tests and the benchmark; the chapter sweeps its trained model)."""
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        lm = DecoderLM(20, 16, depth=2, num_heads=4, ff_dim=32)
        model = FlamingoLikeModel(None, 8, lm, num_latents=4, resampler_depth=1, num_heads=4,
                                  media_token_id=19)
        with torch.no_grad():
            for block, alpha in zip(model.cross_blocks, (0.8, 1.5), strict=True):
                block.attn_gate.fill_(alpha)
                block.ff_gate.fill_(alpha)
        prompts = torch.randint(0, 19, (32, 5))
        prompts[:, 1] = 19
        answers = torch.randint(0, 10, (32,))
        sweep = gate_sweep(model, torch.randn(32, 6, 8), prompts, answers, torch.arange(10),
                           tuple(f"w{i}" for i in range(10)))
    finally:
        torch.random.set_rng_state(torch_state)
    return sweep


def _readout_html(sweep: GateSweep, index: int) -> str:
    scale = float(sweep.scales[index])
    gates = ", ".join(f"gate {g + 1}: alpha {scale * float(a):+.3f}, "
                      f"tanh {float(torch.tanh(scale * a)):+.3f}"
                      for g, a in enumerate(sweep.attention_alphas))
    best = int(sweep.probabilities[index].argmax())
    state = ("every gate closed: the frozen language model alone" if scale == 0 else
             "the trained gates" if scale == 1 else f"{scale:.2f} of each trained alpha")
    return (f"<b>alpha scale = {scale:.2f}</b> ({state}; {gates}): held-out accuracy "
            f"<b>{float(sweep.accuracy[index]):.3f}</b>; the example (answer "
            f"{sweep.example_answer!r}) gets p = {float(sweep.probabilities[index, best]):.3f} "
            f"for {sweep.candidates[best]!r}.")


@pictured
def gate_explorer(sweep: GateSweep | None = None, scale: float = 0.0) -> ipywidgets.VBox:
    """A slider for the alpha scale, accuracy against it, and one example's answer probabilities.

    Args:
        sweep: a :class:`~course_lib.architectures.GateSweep` of a trained model (default:
            :func:`example_gate_sweep`).
        scale: the slider's starting value (0: every gate closed).

    Returns:
        The root widget; ``.slider``, ``.readout`` and ``.figure`` are attached.
    """
    scale = check_number("scale", scale)
    if sweep is not None and not isinstance(sweep, GateSweep):
        raise ArgumentTypeError(f"sweep must be a GateSweep (from gate_sweep) or None, got "
                                f"{describe(sweep)}")
    sweep = example_gate_sweep() if sweep is None else sweep
    index = sweep.index(scale)
    step = float(sweep.scales[1] - sweep.scales[0]) if len(sweep.scales) > 1 else 1.0
    slider = ipywidgets.FloatSlider(value=float(sweep.scales[index]),
                                    min=float(sweep.scales[0]), max=float(sweep.scales[-1]),
                                    step=step, description="alpha scale", readout_format=".2f",
                                    continuous_update=True)
    readout = ipywidgets.HTML(_readout_html(sweep, index))
    figure = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                           subplot_titles=("held-out accuracy",
                                           f"one example (answer {sweep.example_answer!r})"))
    figure.add_scatter(x=sweep.scales.tolist(), y=sweep.accuracy.tolist(), mode="lines",
                       name="accuracy", row=1, col=1)
    figure.add_scatter(x=[float(sweep.scales[index])], y=[float(sweep.accuracy[index])],
                       mode="markers", marker_size=12, name="current setting", row=1, col=1)
    figure.add_bar(x=list(sweep.candidates), y=sweep.probabilities[index].tolist(),
                   name="p(answer)", row=1, col=2)
    figure.update_xaxes(title_text="alpha / trained alpha (every gate)", row=1, col=1)
    figure.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    figure.update_xaxes(title_text="answer word", row=1, col=2)
    figure.update_yaxes(title_text="probability", range=[0, 1.02], row=1, col=2)
    figure.update_layout(height=340, margin=dict(t=40, b=40, l=50, r=10), showlegend=False)
    live = live_figure(figure)

    def on_change(change: dict) -> None:
        new = sweep.index(float(change["new"]))
        with live.batch_update():
            live.data[1].x = [float(sweep.scales[new])]
            live.data[1].y = [float(sweep.accuracy[new])]
            live.data[2].y = sweep.probabilities[new].tolist()
        refresh_static(view, live)
        readout.value = _readout_html(sweep, new)

    view = as_widget(live)  # a static figure where widgets cannot render
    slider.observe(on_change, names="value")
    root = ipywidgets.VBox([slider, readout, view])
    root.slider, root.readout, root.figure = slider, readout, live
    return root


BENCHMARK = gate_explorer
