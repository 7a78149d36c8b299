"""Chapters 04b, 05 and 08 measure honestly: interval helpers and interval asserts.

- every chapter renders its comparisons with ``course_lib.evaluation`` (tables that always print
  intervals, sentences that say "beyond noise" / "within noise");
- no chapter prints a home-made comparison table;
- every ``assert`` that compares two measured quantities compares intervals (``is_above``,
  ``separated``, ``.low`` / ``.high``), never two bare means.

That every training call passes the ``device`` picked by the setup cell is checked, for every
chapter and student copy, in ``test_chapters_use_device.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHAPTERS = {  # chapter -> least number of cells that render comparisons with intervals
    "04b_training_a_mini_clip.ipynb": 2,
    "05_fusion_strategies.ipynb": 10,
    "08_capstone_medical_diagnosis.ipynb": 5,
    "student/08_capstone_medical_diagnosis_student.ipynb": 5,
    "06_architectures.ipynb": 3,
    "09_fusion_benchmark.ipynb": 4,
}
INTERVAL_HELPERS = ("comparison_table(", "describe_comparison(", "plot_estimates(",
                    "paired_bootstrap(", "noise_words(", "wilson_estimate(")
# Names that hold properties of the data or the task, not measurements of a model.
REFERENCE_NAMES = {"math", "SPEECH_SAMPLES", "loss_floor", "validation_floor", "ceilings",
                   "ceiling_of", "DOCUMENTED_CEILINGS", "pair_ceiling"}
INTERVAL_ATTRIBUTES = {"low", "high"}
INTERVAL_CALLS = {"is_above", "separated"}


def _code_cells(name: str) -> list[str]:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def _names_outside_indices(node: ast.AST) -> set[str]:
    """Names an expression reads, leaving out those that only index a subscript (``x[name]``)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Subscript):
        return _names_outside_indices(node.value)
    names: set[str] = set()
    for child in ast.iter_child_nodes(node):
        names |= _names_outside_indices(child)
    return names


def _is_reference(node: ast.AST) -> bool:
    """A literal, or built only from literals and names of data properties (no model result)."""
    return _names_outside_indices(node) <= REFERENCE_NAMES


def _uses_interval(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in INTERVAL_ATTRIBUTES
               for n in ast.walk(node))


def _bare_orderings(source: str) -> list[str]:
    """Comparisons inside asserts whose two sides are both measurements, without intervals."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            operands = [compare.left, *compare.comparators]
            for left, op, right in zip(operands, compare.ops, operands[1:]):
                if not isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                    continue
                if _is_reference(left) or _is_reference(right):
                    continue
                if _uses_interval(left) and _uses_interval(right):
                    continue
                problems.append(ast.unparse(compare))
    return problems


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_comparison_cells_use_the_evaluation_helpers(chapter):
    cells = _code_cells(chapter)
    using = [cell for cell in cells if any(helper in cell for helper in INTERVAL_HELPERS)]
    assert len(using) >= CHAPTERS[chapter], (chapter, len(using))
    assert any("from course_lib.evaluation import" in cell for cell in cells)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_no_home_made_comparison_tables(chapter):
    for cell in _code_cells(chapter):
        tree = ast.parse(cell)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                assert "table" not in node.name, (chapter, node.name)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_assert_that_orders_two_results_compares_intervals(chapter):
    problems = [p for cell in _code_cells(chapter) for p in _bare_orderings(cell)]
    assert not problems, (chapter, problems)


def test_the_checker_of_bare_orderings_catches_them():
    assert _bare_orderings("assert accuracy_a > accuracy_b") == ["accuracy_a > accuracy_b"]
    assert _bare_orderings("assert a['x'].mean > b['x'].mean + 0.01")
    assert not _bare_orderings("assert a.low > b.high")
    assert not _bare_orderings("assert is_above(a, b) and a.mean > 0.7")
    assert not _bare_orderings("assert final_loss < loss_floor + 0.5")
    assert not _bare_orderings("assert abs(x.mean - y.mean) < 0.03")
    assert not _bare_orderings("assert estimate[name].low < ceilings[ceiling_of[name]]")
    assert _bare_orderings("assert results[name] > ceilings[results[name]]") == []
    assert _bare_orderings("assert drops[name] > drops[other]")
