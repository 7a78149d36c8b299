"""Every chapter states how long it takes (at the top) and ends with its further reading."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from notebook_hygiene import structure_problems

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# Chapters 04-09 get their time estimate and further reading on other branches; this marker
# goes when they are merged.
NOT_YET: tuple[str, ...] = ()


def _marks(path: Path):
    if path.name[:2] in NOT_YET:
        return [pytest.mark.xfail(reason="time estimate / further reading not added yet",
                                  strict=False)]
    return []


@pytest.mark.parametrize("path", [pytest.param(p, marks=_marks(p), id=p.name) for p in CHAPTERS])
def test_chapter_has_time_estimate_and_further_reading(path):
    assert structure_problems(path) == []


def _notebook(tmp_path: Path, first: str, last: str) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": first},
             {"cell_type": "markdown", "metadata": {}, "source": "## Summary\n\ntext"},
             {"cell_type": "markdown", "metadata": {}, "source": last}]
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def test_structure_check_accepts_a_well_formed_chapter(tmp_path):
    path = _notebook(tmp_path, "# Chapter 99\n\n*About 30 minutes.*",
                     "## Further reading\n\n- Someone (2020). A paper. arXiv:2001.00001.")
    assert structure_problems(path) == []


def test_structure_check_flags_a_missing_estimate_and_missing_reading(tmp_path):
    path = _notebook(tmp_path, "# Chapter 99", "## Exercises\n\nDo this.")
    problems = structure_problems(path)
    assert len(problems) == 2
    assert "time estimate" in problems[0] and "'Exercises'" in problems[1]


def test_structure_check_wants_further_reading_last(tmp_path):
    path = _notebook(tmp_path, "*About 5 minutes*",
                     "## Further reading\n\n- x\n\n## Exercises\n\nmore")
    assert "Further reading" in structure_problems(path)[0]


# ----------------------------------------------------------------------------- reading time
_SPEC = importlib.util.spec_from_file_location(
    "reading_time_tool", REPO_ROOT / "tools" / "reading_time.py")
reading = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = reading  # dataclasses look their module up
_SPEC.loader.exec_module(reading)
ONE_SITTING_MINUTES = 48  # "no chapter takes much over 45 minutes" (chapters 00-04)
NUMBERED = [p for p in CHAPTERS if p.name[:2].isdigit()]


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.name)
def test_title_cell_does_not_understate_the_reading_time(path):
    """The estimate in the title cell is at least 90 % of tools/reading_time.py's model."""
    stated = reading.stated_minutes(path)
    model = reading.reading_time(path).minutes
    assert stated is not None and stated >= 0.9 * model, (
        f"{path.name}: the title cell says {stated} minutes, the model {model:.0f} "
        f"(python tools/reading_time.py {path.relative_to(REPO_ROOT)})")


@pytest.mark.parametrize("path", [p for p in NUMBERED if p.name[:2] <= "04"],
                         ids=lambda p: p.name)
def test_chapters_00_to_04_each_take_one_sitting(path):
    minutes = reading.reading_time(path).minutes
    assert minutes <= ONE_SITTING_MINUTES, (
        f"{path.name} takes {minutes:.0f} minutes to read and run by the model "
        f"(tools/reading_time.py); split or trim it to {ONE_SITTING_MINUTES}")


def test_reading_time_counts_what_the_model_says(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "word " * 400},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "# a comment\nx = 1\n\ny = 2\n"},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "from course_lib.widgets.tone_explorer import tone_explorer\n"
                        "tone_explorer()"}]
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    time = reading.reading_time(path)
    assert (time.words, time.code_lines, time.code_cells, time.widget_cells) == (400, 4, 2, 1)
    # 400 words at 200 wpm, 4 lines at 4 s, 2 cells at 10 s, one widget at 2 min
    assert time.minutes == pytest.approx(2 + 16 / 60 + 20 / 60 + 2)


def test_stated_minutes_reads_minutes_and_hours(tmp_path):
    for text, minutes in (("*About 40 minutes to read*", 40), ("**Time:** about 2 hours", 120),
                          ("about 1.5 hours", 90), ("# Chapter", None)):
        path = _notebook(tmp_path, text, "## Further reading")
        assert reading.stated_minutes(path) == minutes, text
