"""Shared pieces of the widget views: live plotly figures, matplotlib output, slider walks."""

from __future__ import annotations

import base64
import copy
import importlib.util
import io
import sys
from collections.abc import Iterator

import ipywidgets
import numpy as np
import plotly.graph_objects as go
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from course_lib.env import enable_colab_widgets
from course_lib.widgets._picture import with_picture

STATIC_FIGURE_NOTE = (
    "Interactive plot unavailable (plotly's FigureWidget needs anywidget and a widget manager); "
    "showing a static figure: re-run the cell after `pip install anywidget`."
)


def live_figure_supported() -> bool:
    """True when a plotly ``FigureWidget`` can render: anywidget importable, widgets enabled."""
    return importlib.util.find_spec("anywidget") is not None and enable_colab_widgets()


def figure_widget_class() -> type[go.FigureWidget]:
    """plotly's ``FigureWidget``, imported in well under a second instead of about four.

    Profiled (cProfile) in a fresh kernel: importing ``plotly.basewidget`` imports
    ``plotly.io._renderers`` -> nbformat -> jsonschema, whose format checkers import the
    optional ``rfc3987_syntax``, which compiles 39 Earley grammars with lark at import time:
    about 3.6 of the first FigureWidget's 4.4 s. That package only serves jsonschema's "iri"
    format checks, which nothing in a course kernel uses, so its import is declined while
    jsonschema loads (jsonschema then goes without those checks, as where the package is not
    installed) and allowed again afterwards. Where jsonschema is already loaded, nothing changes.
    """
    if "plotly.basewidget" not in sys.modules and "jsonschema" not in sys.modules \
            and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # an import of it raises ImportError meanwhile
        try:
            import plotly.basewidget  # noqa: F401
        finally:
            if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
                del sys.modules["rfc3987_syntax"]
    return go.FigureWidget


def live_figure(figure: go.Figure) -> go.FigureWidget | go.Figure:
    """A plotly ``FigureWidget`` that callbacks can update in place.

    Where the widget manager is unavailable it degrades to the static ``figure`` and prints a
    one-line explanation, so a chapter still shows its plot instead of failing.
    """
    if live_figure_supported():
        return with_picture(figure_widget_class()(figure), name="interactive plotly figure")
    print(STATIC_FIGURE_NOTE)
    return figure


def as_widget(figure: go.FigureWidget | go.Figure) -> ipywidgets.Widget:
    """What to put in a widget layout for ``live_figure``'s result.

    A ``FigureWidget`` is itself a widget; a static fallback figure is shown in an ``Output``.
    The figure widget's whole current state is sent again here, as plotly does when a
    ``FigureWidget`` is displayed on its own: the updates a widget makes before it is shown
    travel as one-off messages, which the browser drops if plotly's widget code has not loaded
    yet, and the plot would then stay empty until a control moves.
    """
    if isinstance(figure, ipywidgets.DOMWidget):
        if isinstance(figure, go.FigureWidget):
            figure._widget_layout = copy.deepcopy(figure._layout_obj._props)
            figure._widget_data = copy.deepcopy(figure._data)
        return figure
    output = ipywidgets.Output()
    output.append_display_data(figure)
    return output


def refresh_static(view: ipywidgets.Widget, figure: go.FigureWidget | go.Figure) -> None:
    """Redraw a static fallback made by :func:`as_widget` (a live figure needs nothing)."""
    if isinstance(view, ipywidgets.Output):
        view.outputs = ()
        view.append_display_data(figure)


def png_base64(rgba: np.ndarray) -> str:
    """An (H, W, 4) uint8 RGBA image as base64 PNG (fast compression: it is redrawn often)."""
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="png", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_png(figure: Figure) -> str:
    """A matplotlib Figure rendered to PNG, base64-encoded as Jupyter's display data wants it."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return png_base64(np.asarray(canvas.buffer_rgba()))


def show_png(output: ipywidgets.Output, png: str, description: str = "figure") -> None:
    """Make ``output`` show exactly one base64 PNG image, replacing what it showed before.

    The content is replaced in one assignment, so repeated slider moves never pile up images.
    """
    output.outputs = (
        {
            "output_type": "display_data",
            "data": {"image/png": png, "text/plain": description},
            "metadata": {},
        },
    )


def show_matplotlib(output: ipywidgets.Output, figure: Figure) -> None:
    """Make ``output`` show one matplotlib ``Figure`` (built without pyplot).

    Drawing with pyplot inside a widget callback corrupts the first redraw in JupyterLab 4;
    rendering a ``matplotlib.figure.Figure`` to PNG ourselves does not.
    """
    show_png(output, figure_png(figure), repr(figure))


class BlittedPlot:
    """A matplotlib Figure whose static parts (axes, ticks, labels) are drawn once.

    Each update redraws only the ``animated`` artists over a cached background, which keeps a
    slider's redraw well inside the 50 ms budget (drawing tick labels dominates a full draw).
    """

    def __init__(self, figure: Figure, animated: list) -> None:
        self.figure, self.animated = figure, animated
        for artist in animated:
            artist.set_animated(True)
        self.canvas = FigureCanvasAgg(figure)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(figure.bbox)

    def png(self) -> str:
        """The figure as base64 PNG, with the animated artists in their current state."""
        self.canvas.restore_region(self.background)
        for artist in self.animated:
            self.figure.draw_artist(artist)
        return png_base64(np.asarray(self.canvas.buffer_rgba()))


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
