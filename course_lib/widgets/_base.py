"""Shared pieces of the widget views: live plotly figures, matplotlib output, slider walks."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import ipywidgets
import plotly.graph_objects as go
from IPython.display import display
from matplotlib.figure import Figure

from course_lib.env import enable_colab_widgets

STATIC_FIGURE_NOTE = (
    "Interactive plot unavailable (plotly's FigureWidget needs anywidget and a widget manager); "
    "showing a static figure: re-run the cell after `pip install anywidget`."
)


def live_figure_supported() -> bool:
    """True when a plotly ``FigureWidget`` can render: anywidget importable, widgets enabled."""
    return importlib.util.find_spec("anywidget") is not None and enable_colab_widgets()


def live_figure(figure: go.Figure) -> go.FigureWidget | go.Figure:
    """A plotly ``FigureWidget`` that callbacks can update in place.

    Where the widget manager is unavailable it degrades to the static ``figure`` and prints a
    one-line explanation, so a chapter still shows its plot instead of failing.
    """
    if live_figure_supported():
        return go.FigureWidget(figure)
    print(STATIC_FIGURE_NOTE)
    return figure


def show_matplotlib(output: ipywidgets.Output, figure: Figure) -> None:
    """Replace what ``output`` shows with a matplotlib ``Figure`` (built without pyplot).

    Drawing with pyplot inside a widget callback corrupts the first redraw in JupyterLab 4;
    building a ``matplotlib.figure.Figure`` and appending it as display data does not.
    """
    output.clear_output(wait=True)
    output.append_display_data(figure)


def show(widget: ipywidgets.Widget) -> ipywidgets.Widget:
    """Display a widget and return it (so tests and benchmarks can hold on to it)."""
    display(widget)
    return widget


def iter_controls(widget: ipywidgets.Widget) -> Iterator[ipywidgets.ValueWidget]:
    """Every value control (slider, dropdown, toggle, text box) inside a widget tree."""
    if isinstance(widget, ipywidgets.ValueWidget) and not isinstance(
        widget, (ipywidgets.Label, ipywidgets.HTML, ipywidgets.HTMLMath)
    ):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from iter_controls(child)
