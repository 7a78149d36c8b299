"""The stored chapters read without a kernel: what nbconvert's HTML exporter (which nbviewer
uses) makes of them shows a picture for every widget and no dumped objects."""

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from notebook_hygiene import widget_cell_indices

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
IMAGE = re.compile(r"<img[^>]*src=\"data:image/png;base64,")
WIDGET_REPR = re.compile(r"\b(VBox|HBox|FigureWidget|Output)\(children=|\bFigureWidget\(\{")


@pytest.fixture(scope="module")
def exporter():
    return HTMLExporter()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_chapter_exports_to_html_with_a_picture_for_every_widget(path, exporter):
    notebook = nbformat.read(path, as_version=4)
    html, _ = exporter.from_notebook_node(notebook)
    assert not WIDGET_REPR.search(html), f"{path.name}: a widget shows as its repr"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for index in widget_cell_indices(json.loads(json.dumps(code))):
        alone = copy.deepcopy(notebook)
        alone.cells = [code[index]]
        cell_html, _ = exporter.from_notebook_node(alone)
        assert IMAGE.search(cell_html), (
            f"{path.name}: widget cell {index} ({''.join(code[index].source)[:60]!r}) shows no "
            "picture without a kernel: re-execute the chapter (make execute-notebooks)")


def test_a_widget_cell_without_a_picture_is_caught(exporter):
    cell = nbformat.v4.new_code_cell("explorer = tone_explorer()\nexplorer", execution_count=1)
    cell.outputs = [nbformat.v4.new_output(
        "execute_result", execution_count=1,
        data={"text/plain": "VBox(children=(FloatSlider(value=440.0),))"})]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [cell]
    html, _ = exporter.from_notebook_node(notebook)
    assert widget_cell_indices([json.loads(json.dumps(cell))]) == [0]
    assert WIDGET_REPR.search(html) and not IMAGE.search(html)


@pytest.mark.parametrize("source, expected", [
    ("explorer = tone_explorer(frequency_hz=440.0)\nexplorer", [0]),
    ("_ = display(patch_explorer(image))", [0]),
    ("display(calculator)", []),  # a name bound in another cell is not followed
    ("explorer = tone_explorer()\nprint(explorer.children)", []),
    ("live_figure(figure)", [0]),
    ("# tone_explorer()\nx = 1", []),
])
def test_widget_cells_are_found_by_their_last_line(source, expected):
    cell = {"cell_type": "code", "source": source, "outputs": []}
    assert widget_cell_indices([cell]) == expected
