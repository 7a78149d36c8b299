"""Temperature explorer: drag tau and watch each softmax sharpen or flatten, and the loss move.

The numbers come from :func:`course_lib.contrastive.contrastive_breakdown` and
:func:`course_lib.contrastive.temperature_curve`; this module only draws them.
"""

from __future__ import annotations

import ipywidgets
import torch
from plotly.subplots import make_subplots

from course_lib._validation import check_tensor, check_text
from course_lib.contrastive import (
    WORKED_SIMILARITY,
    WORKED_TEMPERATURE,
    contrastive_breakdown,
    temperature_curve,
)
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._checks import check_slider_value
from course_lib.widgets._picture import pictured

DIRECTIONS = ("rows", "columns")
CURVE_TEMPERATURES = torch.logspace(-2.3, 0.3, 80)


def _direction_labels(
    direction: str, n: int, modality_a: str, modality_b: str
) -> tuple[list[str], list[str]]:
    """(query names, candidate names): rows ask A->B, columns ask B->A."""
    names_a = [f"{modality_a} {i + 1}" for i in range(n)]
    names_b = [f"{modality_b} {j + 1}" for j in range(n)]
    return (names_a, names_b) if direction == "rows" else (names_b, names_a)


def _readout_html(breakdown, temperature: float, modality_a: str, modality_b: str) -> str:
    rows = ", ".join(f"{v:.6f}" for v in breakdown.row_losses.tolist())
    columns = ", ".join(f"{v:.6f}" for v in breakdown.column_losses.tolist())
    return (
        f"<b>tau = {temperature:.4f}</b> (logit scale {1 / temperature:.2f})<br>"
        f"{modality_a}&rarr;{modality_b} (rows) losses: {rows}; mean "
        f"<b>{breakdown.row_loss:.7f}</b><br>"
        f"{modality_b}&rarr;{modality_a} (columns) losses: {columns}; mean "
        f"<b>{breakdown.column_loss:.7f}</b><br>"
        f"symmetric (CLIP) loss: <b>{breakdown.symmetric_loss:.7f}</b>"
    )


@pictured
def temperature_explorer(
    similarity: torch.Tensor | None = None,
    temperature: float = WORKED_TEMPERATURE,
    modality_a: str = "image",
    modality_b: str = "text",
) -> ipywidgets.VBox:
    """A temperature slider, a direction toggle, the softmax bars and the loss curve.

    Args:
        similarity: (N, N) cosine similarities (default: the course's worked 3x3 example).
        temperature: the slider's starting tau.
        modality_a, modality_b: names of the row and column items, for the labels.

    Returns:
        The root widget; ``.slider``, ``.direction``, ``.readout`` and ``.figure`` are attached.
    """
    if similarity is None:
        similarity = torch.tensor(WORKED_SIMILARITY, dtype=torch.float64)
    similarity = check_tensor("similarity", similarity, shape=("N", "N"), finite=True,
                              nonempty=True)
    if len(similarity) > 12:
        raise ValueError(f"similarity must be at most 12 x 12 to be drawn as bars, got "
                         f"{tuple(similarity.shape)}")
    temperature = check_slider_value("temperature", temperature, 10 ** -2.3, 10 ** 0.3)
    modality_a = check_text("modality_a", modality_a)
    modality_b = check_text("modality_b", modality_b)
    n = similarity.shape[0]
    curve = temperature_curve(similarity, CURVE_TEMPERATURES)
    slider = ipywidgets.FloatLogSlider(value=temperature, base=10, min=-2.3, max=0.3, step=0.01,
                                       description="tau", readout_format=".3f",
                                       continuous_update=True)
    direction = ipywidgets.ToggleButtons(options=DIRECTIONS, value="rows",
                                         description="softmax over")
    readout = ipywidgets.HTML()

    figure = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                           subplot_titles=("softmax of each query", "mean loss vs temperature"))
    queries, candidates = _direction_labels("rows", n, modality_a, modality_b)
    for i in range(n):
        figure.add_bar(x=candidates, y=[0.0] * n, name=queries[i], row=1, col=1)
    temperatures = curve.temperatures.tolist()
    for name, values in (("rows", curve.row_loss), ("columns", curve.column_loss),
                         ("symmetric", curve.symmetric_loss)):
        figure.add_scatter(x=temperatures, y=values.tolist(), mode="lines", name=f"loss ({name})",
                           row=1, col=2)
    figure.add_scatter(x=[temperature], y=[0.0], mode="markers", marker={"size": 11},
                       name="current tau", row=1, col=2)
    figure.update_layout(height=380, margin={"t": 60, "b": 50, "l": 60, "r": 20},
                         barmode="group", legend={"font": {"size": 10}})
    figure.update_yaxes(title_text="probability", range=[0, 1.02], row=1, col=1)
    figure.update_xaxes(title_text="candidate", row=1, col=1)
    figure.update_xaxes(title_text="temperature tau (log scale)", type="log", row=1, col=2)
    figure.update_yaxes(title_text="loss (nats)", type="log", row=1, col=2)
    view = live_figure(figure)

    def update(_change=None) -> None:
        tau = float(slider.value)
        breakdown = contrastive_breakdown(similarity, tau)
        if direction.value == "rows":
            probabilities = breakdown.row_probabilities
        else:
            probabilities = breakdown.column_probabilities.T
        queries, candidates = _direction_labels(direction.value, n, modality_a, modality_b)
        with view.batch_update():
            for i in range(n):
                view.data[i].x = candidates
                view.data[i].y = probabilities[i].tolist()
                view.data[i].name = queries[i]
            view.data[-1].x = [tau]
            view.data[-1].y = [breakdown.symmetric_loss]
            view.layout.title = {"text": f"tau = {tau:.3f}: symmetric loss "
                                         f"{breakdown.symmetric_loss:.4f}", "font": {"size": 14}}
        readout.value = _readout_html(breakdown, tau, modality_a, modality_b)

    slider.observe(update, names="value")
    direction.observe(update, names="value")
    update()
    children = [slider, direction, readout]
    children.append(as_widget(view))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    root.slider, root.direction, root.readout, root.figure = slider, direction, readout, view
    return root


BENCHMARK = temperature_explorer
