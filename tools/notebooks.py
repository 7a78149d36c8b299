"""Build, execute and normalise the chapter notebooks.

    python tools/notebooks.py execute notebooks/03*_*.ipynb  # restart, run all, save, normalise
    python tools/notebooks.py format notebooks/*.ipynb       # strip widget state, tidy metadata

Notebooks are committed executed, with their outputs, but without widget state (which can
add megabytes of JavaScript) or machine-specific metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course_lib.colab import BOOTSTRAP_CELL, colab_badge  # noqa: E402

KEPT_CELL_METADATA = ("tags",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT_S = 300


def normalise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget state and run-specific metadata; keep outputs and execution counts."""
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        cell.id = f"cell-{index:03d}"
        for output in cell.get("outputs", []):
            # Widget state is not stored, so a stored widget view names a model that no viewer
            # can find: drop it and keep the output's picture (course_lib.widgets._picture)
            # or text. Running the cell in a kernel makes the live widget again.
            if WIDGET_VIEW in output.get("data", {}):
                del output["data"][WIDGET_VIEW]
    return notebook


def execute(path: Path, timeout: int = CELL_TIMEOUT_S) -> float:
    """Restart the kernel, run every cell in order, save in place; returns wall seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(normalise(notebook), path)
    return seconds


def format_notebook(path: Path) -> None:
    nbformat.write(normalise(nbformat.read(path, as_version=4)), path)


def new_chapter(path: Path, title: str, objectives: list[str], setup_code: str,
                cells: list[tuple[str, str]]) -> None:
    """Write a chapter skeleton: title + badge + objectives, the setup cell, then ``cells``.

    ``cells`` is a list of ("markdown" | "code", source). ``setup_code`` follows the Colab
    bootstrap in the first code cell (imports, ``setup_notebook``).
    """
    header = "\n".join(
        [f"# {title}", "", colab_badge(f"notebooks/{path.name}"), "",
         "**In this chapter you will:**", ""] + [f"- {item}" for item in objectives]
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell(header))
    notebook.cells.append(nbformat.v4.new_code_cell(BOOTSTRAP_CELL + "\n" + setup_code.strip()))
    for kind, source in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        notebook.cells.append(make(source.strip("\n")))
    nbformat.write(normalise(notebook), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["execute", "format"])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.paths:
        if args.command == "execute":
            print(f"{path}: executed in {execute(path):.1f} s")
        else:
            format_notebook(path)


if __name__ == "__main__":
    main()
