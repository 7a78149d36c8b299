"""The course's performance budgets, measured (run with `make bench`).

1. Every chapter notebook, executed headless in a fresh kernel (nothing is saved): wall
   seconds and the kernel's peak resident memory. Budgets: 60 s per chapter (90 s for the
   training-heavy ones), 5 minutes for the course, 2 GB per kernel.
2. Every widget (each ``course_lib.widgets`` module's ``BENCHMARK``): each control is moved
   through a few values and each update (logic + figure) is timed. Budget: 50 ms.

    python tools/bench.py                      # everything
    python tools/bench.py --widgets-only
    python tools/bench.py notebooks/03_*.ipynb # some notebooks
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

NOTEBOOK_BUDGET_S = {"05": 90, "06": 90, "08": 90}
DEFAULT_NOTEBOOK_BUDGET_S = 60
COURSE_BUDGET_S = 300
MEMORY_BUDGET_MB = 2048
WIDGET_BUDGET_MS = 50.0
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
    return {"notebook": path.name, "seconds": seconds, "peak_mb": peak_mb}


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


def bench_widgets() -> list[dict]:
    import torch

    from course_lib.widgets import benchmark_factories
    from course_lib.widgets._base import iter_controls

    torch.set_num_threads(1)  # as in the chapters (course_lib.env.setup_notebook)
    rows = []
    for name, factory in sorted(benchmark_factories().items()):
        root = factory()
        timings = []
        for control in list(iter_controls(root)):
            for _ in range(REPEATS):
                for value in _candidate_values(control):
                    start = time.perf_counter()
                    control.value = value
                    timings.append(1000 * (time.perf_counter() - start))
        row = {"widget": name, "updates": len(timings),
               "median_ms": statistics.median(timings) if timings else float("nan"),
               "max_ms": max(timings) if timings else float("nan")}
        verdict = "ok" if row["median_ms"] <= WIDGET_BUDGET_MS else "OVER BUDGET"
        print(f"{name:<24} {row['updates']:5d} updates  median {row['median_ms']:6.1f} ms  "
              f"max {row['max_ms']:6.1f} ms   (budget {WIDGET_BUDGET_MS:.0f} ms)  {verdict}",
              flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure the course's performance budgets.")
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--widgets-only", action="store_true")
    parser.add_argument("--notebooks-only", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one_notebook(args.one.resolve())))
        return
    if not args.widgets_only:
        paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
        print(f"{'notebook':<48} {'wall':>9}  {'peak':>10}")
        rows = bench_notebooks([p.resolve() for p in paths])
        total = sum(r["seconds"] for r in rows)
        verdict = "ok" if total <= COURSE_BUDGET_S else "OVER BUDGET"
        print(f"{'total':<48} {total:7.1f} s   (budget {COURSE_BUDGET_S} s)  {verdict}\n")
    if not args.notebooks_only:
        print("widget updates (logic + figure), per control value change")
        bench_widgets()


if __name__ == "__main__":
    main()
