"""tools/bench.py finds the cells that build widgets, however the chapter writes them."""
import importlib.util
from pathlib import Path

import nbformat

_SPEC = importlib.util.spec_from_file_location(
    "bench_tool", Path(__file__).parent.parent / "tools" / "bench.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_a_widget_built_in_the_cell_that_imports_it_is_found():
    notebook = _notebook(
        "x = 1",
        "from IPython.display import display\n\n"
        "from course_lib.widgets.tokenizer_box import tokenizer_box\n\n"
        "_ = display(tokenizer_box(tokenizer, text='a'))")
    assert bench.widget_cells(notebook) == [(1, "tokenizer_box", "tokenizer_box")]


def test_an_import_alone_is_not_a_widget_cell_and_a_later_call_is():
    notebook = _notebook(
        "from course_lib.widgets.attention_explorer import (attention_explorer,\n"
        "                                                  image_attention_viewer)",
        "image_attention_viewer(weights)",
        "print('attention_explorer is a name in a string, not a call')",
        "attention_explorer(q, k)")
    assert bench.widget_cells(notebook) == [
        (1, "attention_explorer", "image_attention_viewer"),
        (3, "attention_explorer", "attention_explorer")]
