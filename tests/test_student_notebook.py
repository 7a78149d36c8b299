"""The student copy of chapter 08 is generated from the master and kept up to date."""

import ast
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from course_lib.colab import colab_badge

REPO_ROOT = Path(__file__).resolve().parent.parent
MASTER = REPO_ROOT / "notebooks" / "08_capstone_medical_diagnosis.ipynb"
STUDENT = REPO_ROOT / "notebooks" / "08_capstone_medical_diagnosis_student.ipynb"
EXERCISES = ("build_tensors", "build_model", "train_model", "evaluate", "accuracy_without")


def _load_tool():
    path = REPO_ROOT / "tools" / "make_student_notebook.py"
    spec = importlib.util.spec_from_file_location("make_student_notebook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _read(path):
    return nbformat.read(path, as_version=4)


def _outputs(cell):
    """Printed text and displayed text (a checker's verdict is a display in a kernel)."""
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


# ----------------------------------------------------------------------------- the generator
def test_stub_keeps_signature_docstring_and_decorators():
    source = (
        "import torch\n\n"
        "@torch.no_grad()\n"
        "def f(x, y=2):\n"
        '    """Add two things."""\n'
        "    total = x + y\n"
        "    return total\n\n"
        "def g():\n"
        "    def inner():\n"
        "        return 1\n"
        "    return inner()\n"
    )
    stubbed = tool.stub_functions(source)
    assert "import torch" in stubbed and "@torch.no_grad()\ndef f(x, y=2):" in stubbed
    assert '"""Add two things."""' in stubbed
    assert "total" not in stubbed and "inner" not in stubbed
    tree = ast.parse(stubbed)
    for function in [node for node in tree.body if isinstance(node, ast.FunctionDef)]:
        last = function.body[-1]
        assert isinstance(last, ast.Raise) and last.exc.func.id == "NotImplementedError"
    namespace = {}
    exec(compile(stubbed, "<stub>", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="f: not implemented yet"):
        namespace["f"](1)


def test_stub_rejects_code_that_would_leak_a_solution():
    with pytest.raises(ValueError, match="only imports and functions, found `EPOCHS = 40`"):
        tool.stub_functions("EPOCHS = 40\n\ndef f():\n    return EPOCHS\n")


def test_student_path_sits_next_to_the_master():
    assert tool.student_path(MASTER) == STUDENT


# ----------------------------------------------------------------------------- the committed copy
def test_committed_student_notebook_is_up_to_date():
    """Regenerate from the committed master and compare every cell's type and source."""
    expected = tool.make_student(_read(MASTER), MASTER.name)
    committed = _read(STUDENT)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ], "run: python tools/make_student_notebook.py notebooks/08_capstone_medical_diagnosis.ipynb"


def test_master_holds_every_solution_and_the_student_copy_none():
    master, student = _read(MASTER), _read(STUDENT)
    solutions = [c for c in master.cells if "solution" in _tags(c)]
    exercises = [c for c in student.cells if "exercise" in _tags(c)]
    functions = [[n for n in ast.parse(c.source).body if isinstance(n, ast.FunctionDef)]
                 for c in solutions]
    assert [f.name for group in functions for f in group] == list(EXERCISES)
    assert len(exercises) == len(solutions)
    for solution, exercise, group in zip(solutions, exercises, functions, strict=True):
        for function in group:
            body = function.body[1:] if ast.get_docstring(function) else function.body
            for statement in body:
                for line in ast.get_source_segment(solution.source, statement).splitlines():
                    if line.strip():
                        assert line.strip() not in exercise.source, (function.name, line)
            assert f'raise NotImplementedError("{function.name}: not implemented yet")' in (
                exercise.source)
            assert ast.get_docstring(function, clean=False) in exercise.source


def test_master_only_cells_are_left_out_of_the_student_copy():
    master, student = _read(MASTER), _read(STUDENT)
    master_only = [c.source for c in master.cells if "master-only" in _tags(c)]
    assert master_only and all("assert" in source for source in master_only)
    assert not any(c.source in master_only for c in student.cells)
    assert len(student.cells) == len(master.cells) - len(master_only)


def test_each_notebook_has_its_own_colab_badge():
    master_title, student_title = _read(MASTER).cells[0].source, _read(STUDENT).cells[0].source
    assert colab_badge(f"notebooks/{STUDENT.name}") in student_title
    assert colab_badge(f"notebooks/{MASTER.name}") not in student_title
    assert colab_badge(f"notebooks/{MASTER.name}") in master_title
    assert student_title.splitlines()[0].endswith("(exercises)")


def test_the_master_passes_every_check_and_the_student_copy_says_not_implemented_yet():
    def check_outputs(notebook):
        return [_outputs(c) for c in notebook.cells
                if c.cell_type == "code" and "checks.check_" in c.source]

    master_outputs, student_outputs = check_outputs(_read(MASTER)), check_outputs(_read(STUDENT))
    assert len(master_outputs) == len(student_outputs) == 6
    assert all(output.startswith("Well done!") for output in master_outputs), master_outputs
    assert not any("Well done!" in output for output in student_outputs)
    assert sum(output.startswith("Not implemented yet") for output in student_outputs) >= 4
    assert all(output.startswith(("Not implemented yet", "Finish exercise"))
               for output in student_outputs), student_outputs


def test_the_student_copy_ran_to_the_end_without_errors():
    notebook = json.loads(STUDENT.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert not any(o["output_type"] == "error" for c in code for o in c["outputs"])
