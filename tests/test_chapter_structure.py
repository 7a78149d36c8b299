"""Every chapter states how long it takes (at the top) and ends with its further reading."""

from __future__ import annotations

import json
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
