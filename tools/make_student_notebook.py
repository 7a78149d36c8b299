"""Generate a chapter's student notebook from its master (solutions become stubs), then run it.

    python tools/make_student_notebook.py notebooks/07_token_budget.ipynb
    python tools/make_student_notebook.py --all      # every master (a chapter with exercises)

One source of truth: the master notebook holds the solutions, in code cells tagged
``solution`` that define functions. In the student copy each such function keeps its
signature and docstring (which say what to do) and its body becomes a stub raising
``NotImplementedError``. Cells tagged ``master-only`` (assertions that only the solutions
pass) and ``answer`` (worked answers of open exercises) are left out. The title cell gets
the student notebook's own Colab badge and a note. The copy is written to
``notebooks/student/<name>_student.ipynb``, executed top to bottom (the checkers report
"not implemented yet"), and normalised. A master is any chapter with a ``solution`` cell.
``tests/test_student_notebook.py`` fails when a committed copy is out of date.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import sys
from pathlib import Path

import nbformat

TOOLS_DIR = Path(__file__).resolve().parent
SOLUTION_TAG = "solution"
MASTER_ONLY_TAG = "master-only"
ANSWER_TAG = "answer"
LEFT_OUT_TAGS = (MASTER_ONLY_TAG, ANSWER_TAG)
STUDENT_SUFFIX = "_student"
STUDENT_DIR = "student"
STUDENT_NOTE = (
    "> **Your copy, with exercises.** Each exercise below is a function whose body you write "
    "(replace the `raise NotImplementedError` line), followed by a check that prints "
    "\"Well done!\" or a hint. Until you finish an exercise, the cells that need it say so "
    "and the notebook still runs from top to bottom. Worked solutions: the chapter itself, "
    "[{master}](../{master}) (try first!)."
)


def _notebook_tools():
    """tools/notebooks.py, loaded by path (a plain `import notebooks` would find the folder)."""
    spec = importlib.util.spec_from_file_location("course_notebook_tools",
                                                  TOOLS_DIR / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_path(master_path: Path) -> Path:
    """``notebooks/08_x.ipynb`` -> ``notebooks/student/08_x_student.ipynb``."""
    return master_path.parent / STUDENT_DIR / (master_path.stem + STUDENT_SUFFIX
                                               + master_path.suffix)


def is_master(notebook: nbformat.NotebookNode) -> bool:
    """Whether a notebook has exercises: a code cell tagged ``solution``."""
    return any(SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])
               for cell in notebook.cells)


def find_masters(notebooks_dir: Path) -> list[Path]:
    """The chapters in ``notebooks_dir`` (``NN_name.ipynb``) that have exercises, in order."""
    return [path for path in sorted(notebooks_dir.glob("[0-9][0-9]*_*.ipynb"))
            if is_master(nbformat.read(path, as_version=4))]


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def stub_functions(source: str) -> str:
    """Replace the body of every top-level function in ``source`` by a stub.

    Signatures, decorators, docstrings, imports and comments outside the bodies stay.

    Raises:
        ValueError: if ``source`` has top-level code other than imports and functions (it
            could be part of a solution, and would leak into the student copy).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    functions = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(statement)
        elif not isinstance(statement, (ast.Import, ast.ImportFrom)):
            raise ValueError(
                f"source line {statement.lineno}: a solution cell may hold only imports and "
                f"functions, found `{lines[statement.lineno - 1].strip()}`"
            )
    for function in reversed(functions):  # bottom-up, so earlier line numbers stay valid
        body = function.body
        first_code = 1 if _is_docstring(body[0]) else 0
        start = body[0].end_lineno if first_code else body[0].lineno - 1  # 0-based first line
        indent = " " * body[0].col_offset
        stub = [
            f"{indent}# Your turn: replace the next line with your code.",
            f'{indent}raise NotImplementedError("{function.name}: not implemented yet")',
        ]
        lines[start:function.end_lineno] = stub
    return "\n".join(lines)


# A relative link or picture in Markdown, to a notebook, a page or an image file.
_RELATIVE_LINK = re.compile(
    r"(\]\()(?!https?:|mailto:|/|#)([^)\s]+\.(?:ipynb|md|png|jpe?g|gif|svg)(?:#[^)\s]*)?\))")


def relink(markdown: str) -> str:
    """Relative links of a master's Markdown, seen from ``notebooks/student/`` (one level up)."""
    return _RELATIVE_LINK.sub(r"\1../\2", markdown)


def _title_cell(source: str, master_name: str, student_repo_path: str) -> str:
    tools = _notebook_tools()
    master_badge = tools.colab_badge(f"notebooks/{master_name}")
    if master_badge not in source:
        raise ValueError(f"the master's title cell lacks its Colab badge {master_badge}")
    title, _, rest = source.partition("\n")
    rest = relink(rest)
    student_title = f"{title} (exercises)"
    badge = tools.colab_badge(student_repo_path)
    note = STUDENT_NOTE.format(master=master_name)
    return "\n".join([student_title, rest.replace(master_badge, badge), "", note]).rstrip()


def make_student(master: nbformat.NotebookNode, master_name: str) -> nbformat.NotebookNode:
    """The student notebook (not executed) for a master notebook named ``master_name``."""
    student = nbformat.v4.new_notebook(metadata=dict(master.metadata))
    student_name = student_path(Path(master_name)).name
    for index, cell in enumerate(master.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag in tags for tag in LEFT_OUT_TAGS):
            continue
        source = cell.source
        if index == 0:
            source = _title_cell(source, master_name,
                                 f"notebooks/{STUDENT_DIR}/{student_name}")
        elif cell.cell_type == "markdown":
            source = relink(source)
        if SOLUTION_TAG in tags:
            if cell.cell_type != "code":
                raise ValueError(f"cell {index} is tagged {SOLUTION_TAG!r} but is not code")
            source = stub_functions(source)
        make = nbformat.v4.new_code_cell if cell.cell_type == "code" else (
            nbformat.v4.new_markdown_cell)
        new = make(source)
        new.metadata = {"tags": [t for t in tags if t != SOLUTION_TAG]} if tags else {}
        if SOLUTION_TAG in tags:
            new.metadata["tags"] = ["exercise"]
        student.cells.append(new)
    return _notebook_tools().normalise(student)


def write_student(master_path: Path, execute: bool = True) -> Path:
    """Generate, write and (by default) execute the student copy of ``master_path``."""
    master = nbformat.read(master_path, as_version=4)
    target = student_path(master_path)
    target.parent.mkdir(exist_ok=True)
    nbformat.write(make_student(master, master_path.name), target)
    if execute:
        seconds = _notebook_tools().execute(target)
        print(f"{target}: generated and executed in {seconds:.1f} s")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("masters", nargs="*", type=Path, help="master notebooks")
    parser.add_argument("--all", action="store_true",
                        help="every chapter in notebooks/ that has a solution cell")
    parser.add_argument("--no-execute", action="store_true", help="write without running")
    args = parser.parse_args()
    masters = list(args.masters)
    if args.all:
        masters += find_masters(TOOLS_DIR.parent / "notebooks")
    if not masters:
        parser.error("name master notebooks, or pass --all")
    for master_path in dict.fromkeys(masters):
        write_student(master_path, execute=not args.no_execute)


if __name__ == "__main__":
    sys.exit(main())
