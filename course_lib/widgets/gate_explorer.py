"""Gate explorer: drag Flamingo's gate parameter alpha and watch how much vision flows in.

The numbers come from :func:`course_lib.architectures.gate_flow` (h' = h + tanh(alpha) *
update); this module only draws them: the tanh curve with the current point, and one text
token's hidden state before and after the gated cross-attention.
"""

from __future__ import annotations

import ipywidgets
import torch
from plotly.subplots import make_subplots

from course_lib.architectures import (
    GatedCrossAttentionBlock,
    GateFlow,
    cross_attention_update,
    gate_flow,
)
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._picture import pictured

CURVE_ALPHAS = torch.linspace(-3.0, 3.0, 121)


def example_gate_inputs(dim: int = 16, num_media: int = 64,
                        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A text token's hidden state and the update a (randomly initialised) gated block's
    cross-attention offers it from ``num_media`` visual tokens. Shapes: (dim,), (dim,)."""
    generator = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    block = GatedCrossAttentionBlock(dim, num_heads=4)
    torch.random.set_rng_state(torch_state)
    hidden = torch.randn(1, 1, dim, generator=generator)
    media = torch.randn(1, num_media, dim, generator=generator)
    with torch.no_grad():
        update = cross_attention_update(block, hidden, media)
    return hidden[0, 0], update[0, 0]


def _readout_html(flow: GateFlow) -> str:
    return (f"<b>alpha = {flow.alpha:.2f}</b> &rarr; tanh(alpha) = <b>{flow.gate:.4f}</b>: "
            f"{100 * abs(flow.gate):.2f} % of the cross-attention update is added"
            f"{' (with its sign flipped)' if flow.gate < 0 else ''}; the token's hidden state "
            f"moves by {flow.relative_change:.3f} of its own length.")


@pictured
def gate_explorer(hidden: torch.Tensor | None = None, update: torch.Tensor | None = None,
                  alpha: float = 0.0) -> ipywidgets.VBox:
    """An alpha slider, the tanh curve, and a text token's hidden state before and after.

    Args:
        hidden: (D,) a text token's hidden state h; update: (D,) what cross-attention to the
            visual tokens offers it (default: :func:`example_gate_inputs`).
        alpha: the slider's starting value (0: the block starts as the identity).

    Returns:
        The root widget; ``.slider``, ``.readout`` and ``.figure`` are attached.
    """
    if hidden is None or update is None:
        hidden, update = example_gate_inputs()
    flow = gate_flow(alpha, hidden, update)
    slider = ipywidgets.FloatSlider(value=alpha, min=-3.0, max=3.0, step=0.05,
                                    description="alpha", readout_format=".2f",
                                    continuous_update=True)
    readout = ipywidgets.HTML(_readout_html(flow))
    dims = list(range(len(hidden)))
    figure = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6],
                           subplot_titles=("gate = tanh(alpha)",
                                           "one text token's hidden state h"))
    figure.add_scatter(x=CURVE_ALPHAS.tolist(), y=torch.tanh(CURVE_ALPHAS).tolist(),
                       mode="lines", name="tanh(alpha)", row=1, col=1)
    figure.add_scatter(x=[flow.alpha], y=[flow.gate], mode="markers", marker_size=12,
                       name="current gate", row=1, col=1)
    figure.add_bar(x=dims, y=hidden.tolist(), name="h (text only)", marker_color="lightgray",
                   row=1, col=2)
    figure.add_bar(x=dims, y=flow.output.tolist(), name="h' = h + tanh(alpha) * CrossAttn",
                   row=1, col=2)
    figure.update_xaxes(title_text="alpha (gate parameter)", row=1, col=1)
    figure.update_yaxes(title_text="gate value", range=[-1.05, 1.05], row=1, col=1)
    figure.update_xaxes(title_text="hidden dimension", row=1, col=2)
    figure.update_yaxes(title_text="value", row=1, col=2)
    figure.update_layout(height=340, margin=dict(t=40, b=40, l=50, r=10), barmode="group",
                         legend=dict(orientation="h", y=-0.25))
    live = live_figure(figure)

    def on_change(change: dict) -> None:
        new = gate_flow(float(change["new"]), hidden, update)
        with live.batch_update():
            live.data[1].x, live.data[1].y = [new.alpha], [new.gate]
            live.data[3].y = new.output.tolist()
        readout.value = _readout_html(new)

    slider.observe(on_change, names="value")
    children = [slider, readout]
    children.append(as_widget(live))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    root.slider, root.readout, root.figure = slider, readout, live
    return root


BENCHMARK = gate_explorer
