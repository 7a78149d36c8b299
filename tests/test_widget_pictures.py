"""The picture behind every widget: what viewers without a kernel show."""

import base64
import io
import json
import re
import sys
from pathlib import Path

import ipywidgets
import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest
from nbconvert import HTMLExporter
from PIL import Image

from course_lib.widgets import benchmark_factories
from course_lib.widgets._base import live_figure
from course_lib.widgets._picture import (
    PICTURED_FACTORIES,
    WIDGET_VIEW,
    picture_array,
    widget_picture_png,
    with_picture,
)
from course_lib.widgets._plotly_picture import plain_text, plotly_figure_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from notebooks import normalise  # noqa: E402

FACTORIES = benchmark_factories()


def _bundle(widget):
    bundle = widget._repr_mimebundle_()
    return bundle[0] if isinstance(bundle, tuple) else bundle


def _pictured_widgets(name):
    widget = FACTORIES[name]()
    # attention_explorer's benchmark puts its two widgets in one box
    return list(widget.children) if name == "attention_explorer" else [widget]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_widget_bundle_has_live_view_picture_and_short_text(name):
    for widget in _pictured_widgets(name):
        data = _bundle(widget)
        assert data[WIDGET_VIEW]["model_id"] == widget.model_id
        pixels = picture_array(data["image/png"])
        assert pixels.shape[0] > 100 and pixels.shape[1] > 200
        assert pixels.std() > 10, "the picture is blank"
        assert len(data["text/plain"]) < 120 and "VBox(" not in data["text/plain"]


def test_picture_shows_the_widget_state_after_a_change():
    slider = ipywidgets.IntSlider(value=3, description="patch")
    box = with_picture(ipywidgets.VBox([slider]))
    before = _bundle(box)["image/png"]
    slider.value = 9
    assert _bundle(box)["image/png"] != before


def test_a_bar_figure_is_drawn_where_plotly_puts_it():
    # one tall red bar on the left, one short blue bar on the right, y from 0 to 1
    figure = go.Figure(go.Bar(x=["a", "b"], y=[1.0, 0.25], marker={"color": ["red", "blue"]}))
    figure.update_layout(width=400, height=300, margin={"l": 40, "r": 40, "t": 40, "b": 40},
                         yaxis={"range": [0, 1]})
    pixels = picture_array(plotly_figure_png(figure)).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    red_rows, red_cols = np.nonzero(red)
    blue_rows, blue_cols = np.nonzero(blue)
    assert red_cols.max() < 200 < blue_cols.min(), "bars in category order, left to right"
    red_height = red_rows.max() - red_rows.min()
    blue_height = blue_rows.max() - blue_rows.min()
    assert red_height == pytest.approx(4 * blue_height, rel=0.1)  # 1.0 vs 0.25


def test_a_reversed_y_heatmap_puts_row_zero_on_top():
    z = [[0.0, 0.0], [1.0, 1.0]]  # row 0 dark, row 1 bright
    figure = go.Figure(go.Heatmap(z=z, colorscale="gray", showscale=False))
    figure.update_layout(width=300, height=300, margin={"l": 30, "r": 30, "t": 30, "b": 30},
                         yaxis={"range": [1.5, -0.5]})
    pixels = picture_array(plotly_figure_png(figure)).mean(axis=2)
    assert pixels[80, 150] < 50 and pixels[220, 150] > 200


def test_numpy_arrays_in_figures_are_decoded():
    figure = go.Figure(go.Heatmap(z=np.eye(3, dtype=np.float32)))
    assert picture_array(plotly_figure_png(figure)).std() > 10


def test_plotly_html_labels_become_plain_text():
    assert plain_text("<b>Tokens</b> left<br>for generation") == "Tokens left\nfor generation"


def test_bad_figure_and_empty_widget_raise_value_errors():
    with pytest.raises(ValueError, match="figure"):
        plotly_figure_png({"layout": {}})
    with pytest.raises(ValueError, match="widget has nothing to picture"):
        widget_picture_png(ipywidgets.VBox([]))


def test_a_broken_picture_never_hides_the_live_widget():
    box = with_picture(ipywidgets.VBox([]), name="empty box")
    data = _bundle(box)
    assert WIDGET_VIEW in data and "image/png" not in data
    assert "no picture" in data["text/plain"]


def test_live_figure_carries_a_picture():
    figure = live_figure(go.Figure(go.Scatter(y=[0, 1, 0])))
    data = _bundle(figure)
    assert "image/png" in data and len(data["text/plain"]) < 120


def _notebook_with_widget_output():
    widget = FACTORIES["welcome"]()
    data = _bundle(widget)
    cell = nbformat.v4.new_code_cell("explorer = tone_explorer()\nexplorer", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data=data, execution_count=1)]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [cell]
    return notebook


def test_normalise_drops_the_stored_widget_view_and_keeps_the_picture():
    notebook = normalise(_notebook_with_widget_output())
    data = notebook.cells[0].outputs[0]["data"]
    assert WIDGET_VIEW not in data and "image/png" in data


def test_nbconvert_html_shows_the_picture_of_a_stored_widget():
    html, _ = HTMLExporter().from_notebook_node(normalise(_notebook_with_widget_output()))
    assert re.search(r"<img[^>]*src=\"data:image/png;base64,", html)
    assert "widget-view+json" not in html


def test_nbconvert_html_falls_back_to_the_picture_even_with_a_widget_view():
    # nbconvert skips a widget view whose state is missing; JupyterLab, VS Code and Colab
    # instead print "model not found", which is why the stored view is dropped as well
    html, _ = HTMLExporter().from_notebook_node(_notebook_with_widget_output())
    assert re.search(r"<img[^>]*src=\"data:image/png;base64,", html)


def test_pictured_factories_are_registered():
    assert {"tone_explorer", "budget_calculator", "live_figure"} <= PICTURED_FACTORIES


def test_picture_png_is_a_valid_png():
    png = base64.b64decode(widget_picture_png(FACTORIES["tokenizer_box"]()))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    json.dumps({"image/png": base64.b64encode(png).decode()})
