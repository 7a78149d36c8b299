"""Every chapter with exercises has a student copy, generated from its master and up to date."""

import ast
import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from notebook_hygiene import notebook_problems

from course_lib.checks import RECORD_KEY
from course_lib.colab import colab_badge

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
STUDENT_DIR = NOTEBOOKS / "student"
CAPSTONE = NOTEBOOKS / "08_capstone_medical_diagnosis.ipynb"
CAPSTONE_EXERCISES = ("build_tensors", "build_model", "train_model", "evaluate",
                      "accuracy_without", "candidate_recipes", "choose_recipe")
CAPSTONE_CHECKS = ("check_tensors", "check_model", "check_training", "check_evaluation",
                   "check_missing_modality", "check_honest", "check_core", "check_stretch",
                   "check_robust")
VERDICT_PREFIXES = ("Well done!", "Not implemented yet", "Finish exercise", "Not yet")


def _load_tool():
    path = REPO_ROOT / "tools" / "make_student_notebook.py"
    spec = importlib.util.spec_from_file_location("make_student_notebook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
MASTERS = tool.find_masters(NOTEBOOKS)
masters = pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)


def _read(path):
    return nbformat.read(path, as_version=4)


def _outputs(cell):
    """Printed text and displayed text (a checker's verdict is a display in a kernel)."""
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _verdicts(notebook):
    """Each checker's message: from its machine-readable record, or its printed text."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get(RECORD_KEY)
            text = output.get("text", "") or output.get("data", {}).get("text/plain", "")
            if record:
                found.append(record["message"])
            elif "checks.check_" in cell.source and text.startswith(VERDICT_PREFIXES):
                found.append(text.strip())
    return found


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


def test_student_copies_live_in_their_own_folder():
    assert tool.student_path(CAPSTONE) == (
        STUDENT_DIR / "08_capstone_medical_diagnosis_student.ipynb")


def test_relative_links_are_rewritten_for_the_student_folder():
    markdown = ("See [chapter 06](06_architectures.ipynb#fusion), ![a plot](../assets/x.png), "
                "[the web](https://example.org/a.ipynb), [here](#section) and `f[0](x)`.")
    assert tool.relink(markdown) == (
        "See [chapter 06](../06_architectures.ipynb#fusion), ![a plot](../../assets/x.png), "
        "[the web](https://example.org/a.ipynb), [here](#section) and `f[0](x)`.")


def test_masters_are_the_chapters_with_solution_cells_and_include_07_and_08():
    names = [path.name for path in MASTERS]
    assert {"07_token_budget.ipynb", CAPSTONE.name} <= set(names)
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")):
        has_solution = any("solution" in _tags(c) for c in _read(path).cells)
        assert (path in MASTERS) is has_solution, path.name


def test_every_student_copy_has_a_master():
    expected = {tool.student_path(master) for master in MASTERS}
    assert set(STUDENT_DIR.glob("*.ipynb")) == expected


# ----------------------------------------------------------------------------- each committed copy
@masters
def test_committed_student_notebook_is_up_to_date(master):
    """Regenerate from the committed master and compare every cell's type and source."""
    student = tool.student_path(master)
    command = f"run: python tools/make_student_notebook.py {master.relative_to(REPO_ROOT)}"
    assert student.exists(), command
    expected = tool.make_student(_read(master), master.name)
    committed = _read(student)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ], command


def _lines(source):
    return {line.strip() for line in source.splitlines() if line.strip()}


@masters
def test_no_solution_code_from_the_master_is_in_the_student_copy(master):
    """A grep: every line of a solution body or a worked answer that appears nowhere else in
    the master must appear nowhere in the student copy."""
    notebook, student = _read(master), _read(tool.student_path(master))
    hidden_tags = {"solution", "answer", "master-only"}
    shown = set().union(*(_lines(c.source) for c in notebook.cells
                          if not hidden_tags & set(_tags(c))))
    secret = set()
    for cell in notebook.cells:
        if "solution" in _tags(cell):
            for function in ast.parse(cell.source).body:
                if isinstance(function, ast.FunctionDef):
                    body = function.body[1:] if ast.get_docstring(function) else function.body
                    for statement in body:
                        secret |= _lines(ast.get_source_segment(cell.source, statement))
        elif {"answer", "master-only"} & set(_tags(cell)):
            secret |= _lines(cell.source)
    secret -= shown
    assert secret, "the master has no solution code to hide"
    student_lines = set().union(*(_lines(c.source) for c in student.cells))
    assert not secret & student_lines


@masters
def test_every_exercise_keeps_its_signature_and_docstring_and_becomes_a_stub(master):
    notebook, student = _read(master), _read(tool.student_path(master))
    solutions = [c for c in notebook.cells if "solution" in _tags(c)]
    exercises = [c for c in student.cells if "exercise" in _tags(c)]
    assert solutions and len(exercises) == len(solutions)
    for solution, exercise in zip(solutions, exercises, strict=True):
        for function in ast.parse(solution.source).body:
            if isinstance(function, ast.FunctionDef):
                assert f'raise NotImplementedError("{function.name}: not implemented yet")' in (
                    exercise.source)
                docstring = ast.get_docstring(function, clean=False)
                assert docstring and docstring in exercise.source, function.name


@masters
def test_left_out_cells_are_missing_from_the_student_copy(master):
    notebook, student = _read(master), _read(tool.student_path(master))
    left_out = [c.source for c in notebook.cells if {"master-only", "answer"} & set(_tags(c))]
    assert not any(c.source in left_out for c in student.cells)
    assert len(student.cells) == len(notebook.cells) - len(left_out)


@masters
def test_each_notebook_has_its_own_colab_badge_and_is_clean(master):
    student = tool.student_path(master)
    repo_path = f"notebooks/student/{student.name}"
    master_title, student_title = _read(master).cells[0].source, _read(student).cells[0].source
    assert colab_badge(repo_path) in student_title
    assert colab_badge(f"notebooks/{master.name}") not in student_title
    assert colab_badge(f"notebooks/{master.name}") in master_title
    assert student_title.splitlines()[0].endswith("(exercises)")
    assert f"[{master.name}](../{master.name})" in student_title
    assert notebook_problems(student, repo_path) == []


def _not_implemented(master: Path) -> int:
    """How many checkers of the student copy say "Not implemented yet"."""
    return sum(v.startswith("Not implemented yet")
               for v in _verdicts(_read(tool.student_path(master))))


@masters
def test_the_master_passes_every_check_and_the_student_copy_says_not_implemented_yet(master):
    """Every verdict is right; a chapter has at least two checked exercises, which a chapter in
    parts (02a_, 02b_) may share out, each part holding at least one."""
    master_verdicts = _verdicts(_read(master))
    student_verdicts = _verdicts(_read(tool.student_path(master)))
    parts = [path for path in MASTERS if path.name[:2] == master.name[:2]]
    assert len(master_verdicts) == len(student_verdicts) >= (2 if len(parts) == 1 else 1)
    assert all(v.startswith("Well done!") for v in master_verdicts), master_verdicts
    assert all(v.startswith(("Not implemented yet", "Finish exercise"))
               for v in student_verdicts), student_verdicts
    assert _not_implemented(master) >= (2 if len(parts) == 1 else 1)
    assert sum(_not_implemented(part) for part in parts) >= 2, [p.name for p in parts]


@masters
def test_the_student_copy_ran_to_the_end_without_errors(master):
    notebook = json.loads(tool.student_path(master).read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert not any(o["output_type"] == "error" for c in code for o in c["outputs"])


def test_student_verdicts_carry_a_machine_readable_record():
    """Executed in a kernel, a checker's verdict is a display with its record as metadata."""
    student = _read(tool.student_path(NOTEBOOKS / "07_token_budget.ipynb"))
    records = [o["metadata"][RECORD_KEY] for c in student.cells if c.cell_type == "code"
               for o in c.outputs if RECORD_KEY in o.get("metadata", {})]
    assert [(r["check"], r["chapter"], r["status"]) for r in records] == [
        ("check_audio_tokens", "ch07", "not-implemented"),
        ("check_largest_square", "ch07", "not-implemented")]


# ----------------------------------------------------------------------------- the capstone
def test_the_capstone_master_holds_its_six_exercises_solutions():
    solutions = [c for c in _read(CAPSTONE).cells if "solution" in _tags(c)]
    names = [n.name for c in solutions for n in ast.parse(c.source).body
             if isinstance(n, ast.FunctionDef)]
    assert names == list(CAPSTONE_EXERCISES)


def test_the_capstones_master_only_cells_are_assertions_and_it_has_nine_checks():
    notebook = _read(CAPSTONE)
    master_only = [c.source for c in notebook.cells if "master-only" in _tags(c)]
    assert master_only and all("assert" in source for source in master_only)
    assert len(_verdicts(notebook)) == len(CAPSTONE_CHECKS)


def test_the_capstones_exercises_and_tiers_are_recorded_for_the_grader():
    """Each check of chapter 08 leaves a record under the chapter name "capstone"; in the
    student copy none has passed, and the tiers wait for the exercises."""
    for path, passed in ((CAPSTONE, True), (tool.student_path(CAPSTONE), False)):
        records = [o["metadata"][RECORD_KEY] for c in _read(path).cells if c.cell_type == "code"
                   for o in c.outputs if RECORD_KEY in o.get("metadata", {})]
        assert [(r["chapter"], r["check"]) for r in records] == [
            ("capstone", name) for name in CAPSTONE_CHECKS]
        assert all(r["passed"] is passed for r in records), records
    student = {r["check"]: r["status"] for c in _read(tool.student_path(CAPSTONE)).cells
               if c.cell_type == "code" for o in c.outputs
               for r in [o.get("metadata", {}).get(RECORD_KEY)] if r}
    assert student["check_tensors"] == student["check_honest"] == "not-implemented"
    assert {student[name] for name in ("check_core", "check_stretch", "check_robust")} == {
        "needs-earlier-exercise"}


def test_the_capstone_student_copy_has_graded_hints_and_no_model_answer():
    master, student = _read(CAPSTONE), _read(tool.student_path(CAPSTONE))
    answer = [c.source for c in master.cells if "answer" in _tags(c)]
    assert any("A model answer" in source for source in answer)
    text = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert "A model answer" not in text
    assert text.count("<summary>Hint 1</summary>") >= 4  # exercises 1, 2, 3 and 6
    assert text.count("<summary>Hint 2</summary>") >= 4
    outside_hints = re.sub(r"<details>.*?</details>", "", text, flags=re.S)
    for recipe in ("hidden_dim=128", "dropout=0.5", "epochs=40", "lr=2e-3", "work well",
                   "is enough"):
        assert recipe not in outside_hints, recipe
    assert "two-layer network on their concatenation is enough" not in text
