"""Views for chapter 03: the attention explorer and the attention map over an image.

The numbers come from :func:`course_lib.attention.explore_attention` and
:func:`course_lib.attention.attention_map_over_image`; these views only draw them.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from course_lib._validation import check_int, check_sequence, check_tensor, check_text
from course_lib.attention import (
    EXAMPLE_KEYS,
    EXAMPLE_VALUES,
    attention_map_over_image,
    explore_attention,
)
from course_lib.widgets._base import as_widget, live_figure, refresh_static
from course_lib.widgets._checks import check_grey_image
from course_lib.widgets._picture import pictured

SLIDER_LAYOUT = widgets.Layout(width="420px")
SLIDER_STYLE = {"description_width": "110px"}


def _displayable(view: go.FigureWidget | go.Figure) -> tuple[widgets.Widget, Callable[[], None]]:
    """The widget to place in the layout, and a function that redraws a static fallback."""
    shown = as_widget(view)
    return shown, lambda: refresh_static(shown, view)


def _explorer_title(state) -> str:
    return (f"scale = {state.scale:.3f}, entropy = {state.entropy_bits:.2f} bits "
            f"(max {state.max_entropy_bits:.2f}), output = "
            f"[{state.output[0]:.3f}, {state.output[1]:.3f}]")


@pictured
def attention_explorer(keys: torch.Tensor | None = None,
                       values: torch.Tensor | None = None) -> widgets.VBox:
    """Sliders for the query's angle and length and the temperature; live weights and output.

    Shape: keys (M, 2), values (M, 2); default: the chapter's worked example.
    """
    dims: dict = {}
    keys = torch.tensor(EXAMPLE_KEYS) if keys is None else keys
    values = torch.tensor(EXAMPLE_VALUES) if values is None else values
    keys = check_tensor("keys", keys, shape=("M", 2), finite=True, nonempty=True, dims=dims)
    values = check_tensor("values", values, shape=("M", 2), finite=True, dims=dims)
    labels = [f"k{i + 1}" for i in range(len(keys))]
    state = explore_attention(0.0, 1.0, 1.0, keys, values)
    figure = make_subplots(rows=1, cols=3, column_widths=[0.36, 0.28, 0.36],
                           subplot_titles=("query and keys", "attention weights",
                                           "values and the output"))
    figure.add_scatter(x=keys[:, 0].tolist(), y=keys[:, 1].tolist(), text=labels,
                       mode="markers+text", textposition="top center", name="keys",
                       marker=dict(size=11, color="#1f77b4"), row=1, col=1)
    figure.add_scatter(x=[0, float(state.query[0])], y=[0, float(state.query[1])],
                       mode="lines+markers", name="query", line=dict(color="#d62728", width=3),
                       row=1, col=1)
    figure.add_heatmap(z=[state.weights.tolist()], x=labels, y=["query"], zmin=0, zmax=1,
                       colorscale="Viridis", texttemplate="%{z:.3f}", showscale=False,
                       name="weights", row=1, col=2)
    hull = torch.cat([values, values[:1]])
    figure.add_scatter(x=hull[:, 0].tolist(), y=hull[:, 1].tolist(), mode="lines+markers+text",
                       text=[f"v{i + 1}" for i in range(len(values))] + [""],
                       textposition="bottom center", name="values",
                       line=dict(color="#aaaaaa", dash="dot"), marker=dict(size=10), row=1, col=3)
    figure.add_scatter(x=[float(state.output[0])], y=[float(state.output[1])], mode="markers",
                       name="output", marker=dict(size=16, symbol="star", color="#d62728"),
                       row=1, col=3)
    figure.update_xaxes(range=[-2.6, 2.6], title_text="dimension 1", row=1, col=1)
    figure.update_yaxes(range=[-2.6, 2.6], title_text="dimension 2", row=1, col=1,
                        scaleanchor="x", scaleratio=1)
    figure.update_xaxes(title_text="key", row=1, col=2)
    figure.update_xaxes(range=[-0.05, 1.05], title_text="value dimension 1", row=1, col=3)
    figure.update_yaxes(range=[-0.05, 1.05], title_text="value dimension 2", row=1, col=3)
    figure.update_layout(title_text=_explorer_title(state), height=360, width=900,
                         showlegend=False, margin=dict(l=50, r=20, t=70, b=50))
    view = live_figure(figure)

    angle = widgets.FloatSlider(value=0.0, min=-180, max=180, step=5,
                                description="query angle (°)", style=SLIDER_STYLE,
                                layout=SLIDER_LAYOUT)
    length = widgets.FloatSlider(value=1.0, min=0.0, max=4.0, step=0.1,
                                 description="query length", style=SLIDER_STYLE,
                                 layout=SLIDER_LAYOUT)
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                         description="temperature", style=SLIDER_STYLE,
                                         layout=SLIDER_LAYOUT)

    def update(_change=None) -> None:
        new = explore_attention(angle.value, length.value, temperature.value, keys, values)
        with view.batch_update():
            view.data[1].x = [0, float(new.query[0])]
            view.data[1].y = [0, float(new.query[1])]
            view.data[2].z = [new.weights.tolist()]
            view.data[4].x = [float(new.output[0])]
            view.data[4].y = [float(new.output[1])]
            view.layout.title.text = _explorer_title(new)
        redraw()

    for slider in (angle, length, temperature):
        slider.observe(update, names="value")
    shown, redraw = _displayable(view)
    root = widgets.VBox([widgets.VBox([angle, length, temperature]), shown])
    root.figure = view
    return root


@pictured
def image_attention_viewer(image: torch.Tensor, weights: torch.Tensor, token_labels: list[str],
                           grid: tuple[int, int], num_prefix_tokens: int = 0) -> widgets.VBox:
    """Pick a query token and a head; see where that head looks on the image.

    Args:
        image: the grey-scale image the patches came from.
        weights: one example's cross-attention weights, e.g. ``module.last_weights[0]``.
        token_labels: one label per query token.
        grid: patch rows and columns; num_prefix_tokens: context tokens before the patches.

    Shape: image (H, W) or (1, H, W), weights (heads, N, M).
    """
    image = check_grey_image("image", image)
    weights = check_tensor("weights", weights, shape=("heads", "N", "M"), finite=True,
                           nonempty=True)
    token_labels = check_sequence("token_labels", token_labels, of="labels")
    for index, label in enumerate(token_labels):
        check_text(f"token_labels[{index}]", label)
    if len(token_labels) != weights.shape[1]:
        raise ValueError(f"token_labels has {len(token_labels)} labels but weights has "
                         f"{weights.shape[1]} query tokens")
    num_prefix_tokens = check_int("num_prefix_tokens", num_prefix_tokens, minimum=0)
    attention_map_over_image(weights, 0, 0, grid, num_prefix_tokens)  # checks grid against M
    rows, cols = grid
    height, width = image.shape
    step = max(1, min(height, width) // 112)  # keep the drawn image small
    first = attention_map_over_image(weights, 0, 0, grid, num_prefix_tokens)
    figure = go.Figure()
    figure.add_heatmap(z=image[::step, ::step].numpy(), dx=step, dy=step, colorscale="gray",
                       showscale=False, hoverinfo="skip")
    figure.add_heatmap(z=first.numpy(), x0=width / cols / 2, dx=width / cols,
                       y0=height / rows / 2, dy=height / rows, colorscale="Hot", opacity=0.55,
                       zmin=0, colorbar=dict(title="weight"))
    figure.update_xaxes(title_text="x (pixels)", range=[0, width], constrain="domain")
    figure.update_yaxes(title_text="y (pixels)", range=[height, 0], scaleanchor="x")
    figure.update_layout(height=430, width=480, margin=dict(l=50, r=20, t=60, b=40))
    view = live_figure(figure)

    token = widgets.Dropdown(options=[(label, i) for i, label in enumerate(token_labels)],
                             value=0, description="query token")
    head = widgets.IntSlider(value=0, min=0, max=weights.shape[0] - 1, description="head")

    def update(_change=None) -> None:
        attention_map = attention_map_over_image(weights, token.value, head.value, grid,
                                                 num_prefix_tokens)
        best = int(attention_map.argmax())
        title = (f"'{token_labels[token.value]}', head {head.value}: max weight "
                 f"{float(attention_map.max()):.3f} at patch (row {best // cols}, "
                 f"col {best % cols})")
        with view.batch_update():
            view.data[1].z = attention_map.numpy()
            view.data[1].zmax = float(attention_map.max())
            view.layout.title.text = title
        redraw()

    token.observe(update, names="value")
    head.observe(update, names="value")
    shown, redraw = _displayable(view)
    update()
    root = widgets.VBox([widgets.HBox([token, head]), shown])
    root.figure = view
    return root


def _benchmark() -> widgets.VBox:
    generator = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(4, 3, 196, generator=generator), dim=-1)
    image = torch.from_numpy(np.linspace(0, 1, 224 * 224, dtype=np.float32).reshape(224, 224))
    viewer = image_attention_viewer(image, weights, ["a", "b", "c"], (14, 14))
    return widgets.VBox([attention_explorer(), viewer])


BENCHMARK = _benchmark
