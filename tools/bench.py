"""The course's performance budgets, measured (run with `make bench`).

1. Every chapter notebook, executed headless in a fresh kernel (nothing is saved): wall
   seconds and the kernel's peak resident memory, and the time of each cell that builds a
   widget (a call of a function imported from ``course_lib.widgets``: what a learner waits
   for before the widget appears). Budgets: 60 s per chapter (90 s for the training-heavy
   ones), 5 minutes for the course, 2 GB per kernel, 1 s per widget cell.
2. Every widget (each ``course_lib.widgets`` module's ``BENCHMARK``): its slowest chapter cell
   from part 1, and its cold build, alone in a fresh process after importing its module (so
   it pays for every lazy import, e.g. the kernel's first plotly FigureWidget); then each
   control is moved through a few values and each update (logic + figure) is timed. Budgets:
   1 s per widget cell (the cold build when the chapters were not run), 50 ms per update.

    python tools/bench.py                      # everything
    python tools/bench.py --widgets-only
    python tools/bench.py notebooks/03*_*.ipynb # some notebooks
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

NOTEBOOK_BUDGET_S = {"05": 90, "06": 90, "08": 90, "09": 90}
DEFAULT_NOTEBOOK_BUDGET_S = 60
COURSE_BUDGET_S = 360  # six minutes for chapters 00-09 (COURSE_DESIGN.md)
MEMORY_BUDGET_MB = 2048
WIDGET_BUDGET_MS = 50.0
CONSTRUCTION_BUDGET_S = 1.0
WIDGET_IMPORT = re.compile(
    r"from course_lib\.widgets\.(\w+) import (?:\(([^)]*)\)|([^\n]*))")


def widget_cells(notebook) -> list[tuple[int, str, str]]:
    """(cell index, widget module, function) for each code cell that calls a function the
    notebook imports from ``course_lib.widgets.<module>`` (the cells that build widgets)."""
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    modules = {name.strip(): match.group(1)
               for match in WIDGET_IMPORT.finditer("\n".join(sources))
               for name in (match.group(2) or match.group(3)).split(",") if name.strip()}
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        # A cell may import the widget and build it (``display(widget(...))``): the import's
        # own parenthesised name list is not a call, so drop the imports before looking.
        calls = WIDGET_IMPORT.sub("", cell.source)
        called = [name for name in sorted(modules) if re.search(rf"\b{name}\s*\(", calls)]
        if called:
            cells.append((index, modules[called[0]], called[0]))
    return cells


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return float("nan")
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()
REPEATS = 3


def run_one_notebook(path: Path) -> dict:
    """Execute a notebook in memory; report wall seconds and the kernel's peak RSS (MB).

    The kernel is this process's child, so once it has exited, RUSAGE_CHILDREN holds its peak.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    widgets = [{"cell": index, "module": module, "widget": name,
                "seconds": _cell_seconds(notebook.cells[index])}
               for index, module, name in widget_cells(notebook)]
    return {"notebook": path.name, "seconds": seconds, "peak_mb": peak_mb, "widgets": widgets}


def bench_notebooks(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        result = subprocess.run([sys.executable, __file__, "--one", str(path)],
                                capture_output=True, text=True, cwd=REPO_ROOT)
        if result.returncode != 0:
            rows.append({"notebook": path.name, "seconds": float("nan"), "peak_mb": float("nan"),
                         "error": result.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(_notebook_line(rows[-1]), flush=True)
        for widget in rows[-1].get("widgets", []):
            verdict = "ok" if widget["seconds"] <= CONSTRUCTION_BUDGET_S else "OVER BUDGET"
            print(f"    widget cell {widget['cell']:>3} {widget['widget']:<30} "
                  f"{widget['seconds']:6.2f} s   (budget {CONSTRUCTION_BUDGET_S:.0f} s)  {verdict}",
                  flush=True)
    return rows


def _budget_s(name: str) -> int:
    return NOTEBOOK_BUDGET_S.get(name[:2], DEFAULT_NOTEBOOK_BUDGET_S)


def _notebook_line(row: dict) -> str:
    ok = row["seconds"] <= _budget_s(row["notebook"]) and row["peak_mb"] <= MEMORY_BUDGET_MB
    verdict = "ok" if ok else f"OVER BUDGET {row.get('error', '')}"
    return (f"{row['notebook']:<48} {row['seconds']:7.1f} s  {row['peak_mb']:7.0f} MB   "
            f"(budget {_budget_s(row['notebook'])} s)  {verdict}")


def _candidate_values(control) -> list:
    """A few values to move a control through, ending where it started."""
    import ipywidgets

    start = control.value
    if isinstance(control, (ipywidgets.Checkbox, ipywidgets.ToggleButton)):
        values = [not start]
    elif isinstance(control, (ipywidgets.Text, ipywidgets.Textarea)):
        values = [start + " and a little more text", start[: max(0, len(start) // 2)]]
    elif hasattr(control, "options") and control.options:
        options = list(control.options)
        values = [o[1] if isinstance(o, tuple) else o for o in options[:4]]
        values = [v for v in values if v != start][:3]
    elif hasattr(control, "min") and hasattr(control, "max"):
        if isinstance(start, tuple):  # range sliders
            values = [(control.min, control.max)]
        else:
            span = control.max - control.min
            values = [control.min + span * f for f in (0.25, 0.75, 1.0)]
            if isinstance(control.value, int):
                values = [int(round(v)) for v in values]
    else:
        values = []
    return values + [start]


def construct_one(name: str) -> dict:
    """In this (fresh) process: import one widget module, then time building its widget."""
    import importlib

    import torch

    torch.set_num_threads(1)  # as in the chapters (course_lib.env.setup_notebook)
    start = time.perf_counter()
    module = importlib.import_module(f"course_lib.widgets.{name}")
    imported = time.perf_counter()
    module.BENCHMARK()
    built = time.perf_counter()
    return {"widget": name, "import_s": imported - start, "construct_s": built - imported}


def _construction(name: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--construct", name],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        return {"widget": name, "import_s": float("nan"), "construct_s": float("nan"),
                "error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_widgets(chapter_cells: dict[str, float] | None = None) -> list[dict]:
    """Build and drive every widget. ``chapter_cells``: the slowest widget cell per widget
    module in the executed chapters (what a learner waits for), when the notebooks ran."""
    import torch

    from course_lib.widgets import benchmark_factories
    from course_lib.widgets._base import iter_controls

    torch.set_num_threads(1)  # as in the chapters (course_lib.env.setup_notebook)
    rows = []
    for name, factory in sorted(benchmark_factories().items()):
        construction = _construction(name)
        root = factory()
        timings = []
        for control in list(iter_controls(root)):
            for _ in range(REPEATS):
                for value in _candidate_values(control):
                    start = time.perf_counter()
                    control.value = value
                    timings.append(1000 * (time.perf_counter() - start))
        in_chapter = (chapter_cells or {}).get(name)
        row = {**construction, "chapter_cell_s": in_chapter, "updates": len(timings),
               "median_ms": statistics.median(timings) if timings else float("nan"),
               "max_ms": max(timings) if timings else float("nan")}
        # The budget applies to the chapter's cell (imports that earlier cells already paid
        # are not the widget's); without the chapters, to the cold build.
        built_s = row["construct_s"] if in_chapter is None else in_chapter
        ok = (row["median_ms"] <= WIDGET_BUDGET_MS
              and built_s <= CONSTRUCTION_BUDGET_S)  # False for NaN (an error)
        verdict = "ok" if ok else f"OVER BUDGET {row.get('error', '')}"
        chapter = "   -  " if in_chapter is None else f"{in_chapter:5.2f} s"
        print(f"{name:<22} {chapter}  {row['construct_s']:5.2f} s  {row['updates']:5d}  "
              f"{row['median_ms']:6.1f} ms  {row['max_ms']:6.1f} ms   {verdict}", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure the course's performance budgets.")
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--construct", help=argparse.SUPPRESS)
    parser.add_argument("--widgets-only", action="store_true")
    parser.add_argument("--notebooks-only", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one_notebook(args.one.resolve())))
        return
    if args.construct:
        print(json.dumps(construct_one(args.construct)))
        return
    chapter_cells: dict[str, float] = {}
    if not args.widgets_only:
        paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
        print(f"{'notebook':<48} {'wall':>9}  {'peak':>10}")
        rows = bench_notebooks([p.resolve() for p in paths])
        total = sum(r["seconds"] for r in rows)
        verdict = "ok" if total <= COURSE_BUDGET_S else "OVER BUDGET"
        print(f"{'total':<48} {total:7.1f} s   (budget {COURSE_BUDGET_S} s)  {verdict}\n")
        for row in rows:
            for widget in row.get("widgets", []):
                module = widget["module"]
                chapter_cells[module] = max(chapter_cells.get(module, 0.0), widget["seconds"])
    if not args.notebooks_only:
        print(f"widgets: build time of the slowest cell that builds it in a chapter (budget "
              f"{CONSTRUCTION_BUDGET_S:.0f} s) and cold, alone in a fresh process after its "
              f"module's import; then updates (logic + figure) per control value change "
              f"(budget {WIDGET_BUDGET_MS:.0f} ms for the median)")
        print(f"{'widget':<22} {'chapter':>7}  {'cold':>7}  {'moves':>5}  {'median':>9}  "
              f"{'max':>9}")
        bench_widgets(chapter_cells)


if __name__ == "__main__":
    main()
