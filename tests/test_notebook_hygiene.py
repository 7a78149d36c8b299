import json
import re
from pathlib import Path

import pytest
from notebook_hygiene import notebook_problems

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
CLEAN_FIXTURE = Path(__file__).parent / "fixtures" / "clean_chapter.ipynb"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_chapter_is_clean(path):
    assert notebook_problems(path) == []


def test_chapters_exist_and_are_numbered():
    names = [p.name for p in CHAPTERS]
    assert names and names[0] == "00_welcome.ipynb"
    assert all(re.fullmatch(r"\d\d[a-z]?_\w+\.ipynb", name) for name in names), names


def test_clean_fixture_passes():
    assert notebook_problems(CLEAN_FIXTURE, "notebooks/clean_chapter.ipynb") == []


def _broken_copy(tmp_path, change):
    notebook = json.loads(CLEAN_FIXTURE.read_text())
    change(notebook)
    path = tmp_path / "clean_chapter.ipynb"
    path.write_text(json.dumps(notebook))
    return notebook_problems(path, "notebooks/clean_chapter.ipynb")


def _code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_missing_execution_count_fails(tmp_path):
    def drop_count(nb):
        _code_cells(nb)[1]["execution_count"] = None

    assert any("no execution count" in p for p in _broken_copy(tmp_path, drop_count))


def test_out_of_order_counts_fail(tmp_path):
    def swap(nb):
        cells = _code_cells(nb)
        cells[0]["execution_count"], cells[1]["execution_count"] = 2, 1

    assert any("not 1..2 in order" in p for p in _broken_copy(tmp_path, swap))


def test_error_output_fails(tmp_path):
    def add_error(nb):
        _code_cells(nb)[1]["outputs"].append(
            {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}
        )

    assert any("error output" in p for p in _broken_copy(tmp_path, add_error))


def test_widget_state_fails(tmp_path):
    def add_state(nb):
        nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}

    assert any("widget state" in p for p in _broken_copy(tmp_path, add_state))


def test_missing_badge_and_title_fail(tmp_path):
    def plain_first_cell(nb):
        nb["cells"][0]["source"] = "Some text without a title"

    problems = _broken_copy(tmp_path, plain_first_cell)
    assert any("title" in p for p in problems) and any("badge" in p for p in problems)


def test_absolute_path_in_output_fails(tmp_path):
    def leak_path(nb):
        _code_cells(nb)[1]["outputs"].append(
            {"output_type": "stream", "name": "stderr", "text": "/home/ada/course/x.py:3"}
        )

    assert any("absolute path" in p for p in _broken_copy(tmp_path, leak_path))


def test_oversized_notebook_fails(tmp_path):
    def pad(nb):
        _code_cells(nb)[1]["outputs"].append(
            {"output_type": "stream", "name": "stdout", "text": "x" * 1_100_000}
        )

    assert any("over 1,000,000" in p for p in _broken_copy(tmp_path, pad))


def test_missing_bootstrap_fails(tmp_path):
    def drop_bootstrap(nb):
        _code_cells(nb)[0]["source"] = "import torch"

    assert any("BOOTSTRAP_CELL" in p for p in _broken_copy(tmp_path, drop_bootstrap))


def test_a_figure_stored_as_text_fails(tmp_path):
    def add_figure_text(nb):
        _code_cells(nb)[1]["outputs"].append(
            {"output_type": "display_data", "metadata": {},
             "data": {"text/plain": "<Figure size 384x368 with 1 Axes>"}})

    assert any("figure is stored as its text" in p for p in _broken_copy(tmp_path, add_figure_text))
