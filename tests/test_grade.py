"""tools/grade.py on a folder of small submissions made for it: each gets the right row.

The folder holds a solved notebook, an untouched stub, one with a wrong answer and a syntax
error, one that loops forever (a time-out), one whose answer loops forever (the checker stops
it and says so), one that tries the network, one whose kernel
dies, an empty file, a truncated notebook and a text file. The grader runs them all (a real
kernel each), and nothing aborts the run.
"""

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.checks import RECORD_KEY

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "grade"
TIMEOUT_S = 25  # per notebook: the solved fixture needs about 8 s on a busy laptop


def _load_tool():
    spec = importlib.util.spec_from_file_location("grade", REPO_ROOT / "tools" / "grade.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


grade = _load_tool()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for path in FIXTURES.iterdir():
        if path.is_file() and path.suffix != ".toml":
            shutil.copy(path, folder / path.name)
    (folder / "alice").mkdir()
    shutil.copy(FIXTURES / "solved.ipynb", folder / "alice" / "07_token_budget_student.ipynb")
    environment = dict(os.environ)
    rows, out = grade.grade_folder(folder, timeout_s=TIMEOUT_S)
    # The kernels run offline; the process that called the grader keeps its own environment
    # (it once inherited the offline proxy, and a later test's localhost requests went to it).
    assert dict(os.environ) == environment
    with (out / "grades.csv").open(newline="", encoding="utf-8") as handle:
        table = {row["file"]: row for row in csv.DictReader(handle)}
    return rows, out, table


AUDIO, SQUARE = "ch07.check_audio_tokens", "ch07.check_largest_square"


def test_one_row_per_file_and_one_column_per_checker(graded):
    rows, out, table = graded
    assert sorted(table) == sorted([
        "alice/07_token_budget_student.ipynb", "empty.ipynb", "infinite_loop.ipynb",
        "kernel_dies.ipynb", "looping_answer.ipynb", "network.ipynb", "notes.txt", "solved.ipynb",
        "syntax_error.ipynb", "truncated.ipynb", "untouched_stub.ipynb"])
    header = next(csv.reader((out / "grades.csv").open(encoding="utf-8")))
    assert header == [*grade.FIXED_COLUMNS, AUDIO, SQUARE]


@pytest.mark.parametrize("name", ["solved.ipynb", "alice/07_token_budget_student.ipynb"])
def test_a_solved_submission_passes_every_check(graded, name):
    row = graded[2][name]
    assert (row["status"], row["passed"], row["checks"], row[AUDIO], row[SQUARE]) == (
        "graded", "2", "2", "1", "1")
    assert row["error"] == ""


def test_an_untouched_stub_runs_to_the_end_and_passes_nothing(graded):
    rows, _, table = graded
    row = table["untouched_stub.ipynb"]
    assert (row["status"], row["passed"], row["checks"], row[AUDIO], row[SQUARE]) == (
        "graded", "0", "2", "0", "0")
    verdicts = next(r for r in rows if r.file == "untouched_stub.ipynb").verdicts
    assert [v["status"] for v in verdicts.values()] == ["not-implemented"] * 2


def test_a_syntax_error_is_reported_and_the_checks_before_it_count(graded):
    row = graded[2]["syntax_error.ipynb"]
    assert row["status"] == "errors" and row["error"].startswith("cell 7: SyntaxError")
    assert (row[AUDIO], row[SQUARE], row["passed"]) == ("0", "1", "1")  # no centre padding


def test_an_endless_loop_is_a_time_out_and_the_checks_before_it_count(graded):
    row = graded[2]["infinite_loop.ipynb"]
    assert row["status"] == "timeout" and f"over the {TIMEOUT_S} s limit (in cell 5)" in (
        row["error"])
    assert (row[AUDIO], row[SQUARE]) == ("1", "")  # the second check never ran
    assert TIMEOUT_S <= float(row["seconds"]) < TIMEOUT_S + 30


def test_an_answer_that_never_returns_is_stopped_by_its_checker_and_recorded(graded):
    rows, _, table = graded
    row = table["looping_answer.ipynb"]
    assert (row["status"], row["passed"], row["checks"], row[AUDIO], row[SQUARE]) == (
        "graded", "1", "2", "0", "1")  # the notebook ran on, to the next check
    record = next(r for r in rows if r.file == "looping_answer.ipynb").verdicts[AUDIO]
    assert record["status"] == "failed" and record["passed"] is False
    assert record["message"].startswith(
        "Not yet: my_audio_tokens did not return within 5 s, so the check stopped it. An "
        "endless loop?")


def test_the_network_is_refused(graded):
    row = graded[2]["network.ipynb"]
    assert row["status"] == "errors"
    assert "PermissionError: no network while grading: 192.0.2.1" in row["error"]


def test_a_dead_kernel_is_a_row(graded):
    assert graded[2]["kernel_dies.ipynb"]["status"] == "kernel died"


@pytest.mark.parametrize("name, status, reason", [
    ("empty.ipynb", "empty", ""),
    ("truncated.ipynb", "not a notebook", "NotJSONError"),
    ("notes.txt", "not a notebook", "NotJSONError"),
])
def test_files_that_are_not_notebooks_become_rows(graded, name, status, reason):
    row = graded[2][name]
    assert row["status"] == status and reason in row["error"]
    assert (row["passed"], row["checks"], row[AUDIO], row[SQUARE]) == ("0", "0", "", "")


def test_the_summary_and_the_executed_notebooks(graded):
    rows, out, _ = graded
    summary = (out / "grades.md").read_text(encoding="utf-8")
    assert summary.startswith(f"# Grades: {len(rows)} files")
    assert "| untouched_stub.ipynb | graded | 0 / 2 |" in summary
    assert "| ch07.check_audio_tokens | 3 | 1 | 0 | 2 | 5 |" in summary  # one per status
    executed = nbformat.read(out / "executed" / "solved.ipynb", as_version=4)
    assert "no network while grading" not in str(executed)  # the hidden cell is gone
    messages = [o.metadata[RECORD_KEY]["message"] for c in executed.cells
                if c.cell_type == "code" for o in c.outputs if RECORD_KEY in o.metadata]
    assert len(messages) == 2 and all(m.startswith("Well done!") for m in messages)


def test_a_second_run_does_not_grade_its_own_output(graded):
    rows, out, _ = graded
    assert grade.submissions(out.parent, out) == sorted(
        p for p in out.parent.rglob("*") if p.is_file() and out not in p.parents)


def test_the_last_verdict_of_a_checker_counts():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/plain": m}, metadata={
        RECORD_KEY: {"check": "check_x", "chapter": "ch07", "passed": m.startswith("Well"),
                     "status": "?", "message": m}}) for m in ("Not yet: no.", "Well done! ok")]
    notebook.cells = [cell]
    assert grade.collect_verdicts(notebook)["ch07.check_x"]["passed"] is True


def test_make_grade_runs_the_grader():
    dry = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=some/folder"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "tools/grade.py some/folder" in dry
