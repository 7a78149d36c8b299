"""Grade a folder of submitted student notebooks: run each headless, collect every verdict.

    python tools/grade.py SUBMISSIONS [--out DIR] [--timeout SECONDS]
    make grade SUBMISSIONS=dir

Every file under SUBMISSIONS (except the output folder) becomes one row. A notebook is run
top to bottom in a fresh kernel, in an empty temporary folder, with a time limit for the
whole notebook and no network (connections to other hosts than this machine raise
``PermissionError`` inside the kernel). Every checker of ``course_lib.checks`` leaves a
machine-readable record of its verdict in the output it displays; the grader reads these
records back from the executed notebook. Nothing aborts the run: an empty file, a file that
is not a notebook, a syntax error, a cell that never ends, a dead kernel all become a row
that says so.

Writes to ``--out`` (default ``SUBMISSIONS/grades``):

- ``grades.csv``: one row per file; columns ``file, status, seconds, passed, checks, error``
  and one column per checker (``chapter.check_name``): 1 passed, 0 ran but did not pass,
  empty if it never ran. If a checker ran more than once, its last verdict counts.
- ``grades.md``: a short summary, per file and per checker.
- ``executed/``: each notebook as it ran, with its outputs, for feedback to the student.

This is for the course's own exercises; it is not a sandbox: run submissions you do not
trust in a container or virtual machine without network.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.checks._common import RECORD_KEY  # noqa: E402

DEFAULT_TIMEOUT_S = 300
FIXED_COLUMNS = ("file", "status", "seconds", "passed", "checks", "error")
STATUSES = {
    "graded": "ran to the end without errors",
    "errors": "ran to the end; some cells raised errors",
    "timeout": "stopped at the time limit",
    "kernel died": "the kernel died (memory? os._exit?)",
    "empty": "empty file",
    "not a notebook": "not a Jupyter notebook",
}
# Run first, hidden from the student's notebook: no network, no downloads.
NO_NETWORK_CELL = '''
import ipaddress as _ipaddress
import sys as _sys


def _course_grading_no_network(event, args):
    """Refuse connections and name look-ups for hosts other than this machine."""
    if event not in ("socket.connect", "socket.getaddrinfo"):
        return
    host = args[0] if event == "socket.getaddrinfo" else args[1]
    if isinstance(host, tuple):
        host = host[0]
    if not isinstance(host, str) or host in ("localhost", ""):
        return  # a Unix socket path is bytes or str without a host; localhost is allowed
    try:
        if _ipaddress.ip_address(host.split("%")[0]).is_loopback:
            return
    except ValueError:
        if host.startswith("/"):
            return  # a Unix socket path
    raise PermissionError(f"no network while grading: {host}")


_sys.addaudithook(_course_grading_no_network)
'''
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                       "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                       "MPLBACKEND": "Agg"}


@dataclass
class Row:
    """One submitted file's grade."""

    file: str
    status: str
    seconds: float = 0.0
    error: str = ""
    verdicts: dict[str, dict] = field(default_factory=dict)  # column -> last record

    def passed(self) -> int:
        return sum(bool(v["passed"]) for v in self.verdicts.values())


def _first_error(notebook: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue", "")).splitlines()[0][:120] if output.get(
                    "evalue") else ""
                return f"cell {index}: {output.get('ename', 'Error')}: {value}".rstrip(": ")
    return ""


def collect_verdicts(notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """Every checker's last record in an executed notebook, keyed ``chapter.check``."""
    verdicts: dict[str, dict] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = output.get("metadata", {}).get(RECORD_KEY)
            if isinstance(record, dict) and "check" in record:
                key = f"{record.get('chapter', '?')}.{record['check']}"
                verdicts.pop(key, None)  # keep the order of the last calls
                verdicts[key] = record
    return verdicts


def _read_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The notebook, or None and the row's status and reason."""
    data = path.read_bytes()
    if not data.strip():
        return None, "empty"
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a row, not a crash
        return None, f"not a notebook|{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    return notebook, ""


def grade_notebook(path: Path, root: Path, timeout_s: float = DEFAULT_TIMEOUT_S,
                   executed_dir: Path | None = None, kernel_name: str = "python3") -> Row:
    """Run one submission in a fresh kernel and return its row (never raises)."""
    name = str(path.relative_to(root))
    try:
        notebook, problem = _read_submission(path)
    except OSError as error:
        return Row(name, "not a notebook", error=f"unreadable: {error}")
    if notebook is None:
        status, _, reason = problem.partition("|")
        return Row(name, status, error=reason)
    hidden = nbformat.v4.new_code_cell(NO_NETWORK_CELL)
    notebook.cells.insert(0, hidden)
    deadline = time.monotonic() + timeout_s
    start = time.perf_counter()
    status, error, running = "graded", "", [0]

    def started(cell: nbformat.NotebookNode, cell_index: int) -> None:
        running[0] = cell_index  # the hidden cell is 0: student cells count from 1

    with tempfile.TemporaryDirectory(prefix="grade-") as workdir:
        client = NotebookClient(
            notebook, kernel_name=kernel_name, allow_errors=True, interrupt_on_timeout=False,
            # Rounded up: a notebook is never stopped before its limit.
            timeout_func=lambda cell: max(1, math.ceil(deadline - time.monotonic())),
            startup_timeout=120, on_cell_execute=started,
            resources={"metadata": {"path": workdir}})
        try:
            # The kernel's own stderr (its start-up warnings, its complaints when it is
            # killed at a time-out) is not the student's output, which the notebook keeps.
            client.execute(stderr=subprocess.DEVNULL, env={**os.environ, **OFFLINE_ENVIRONMENT})
        except CellTimeoutError:
            status, error = "timeout", f"over the {timeout_s:g} s limit"
        except DeadKernelError as dead:
            status, error = "kernel died", str(dead).splitlines()[0][:120]
        except Exception as other:  # noqa: BLE001 - the run must go on
            status, error = "errors", f"{type(other).__name__}: {str(other)[:120]}"
    seconds = time.perf_counter() - start
    notebook.cells.remove(hidden)
    if status == "graded":
        error = _first_error(notebook)
        status = "errors" if error else "graded"
    elif status == "timeout":
        error += f" (in cell {running[0]})"
    if executed_dir is not None:
        target = executed_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
    return Row(name, status, round(seconds, 1), error, collect_verdicts(notebook))


def submissions(folder: Path, out: Path) -> list[Path]:
    """Every file under ``folder`` (sorted), leaving out ``out``, hidden files and checkpoints."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if not path.is_file() or any(p.startswith(".") for p in parts):
            continue
        if out.resolve() in path.resolve().parents:
            continue
        found.append(path)
    return found


def write_csv(rows: list[Row], path: Path) -> list[str]:
    """``grades.csv``; returns the checker columns in the order they first appeared."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row.verdicts if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FIXED_COLUMNS, *columns])
        for row in rows:
            cells = [row.file, row.status, f"{row.seconds:.1f}", row.passed(),
                     len(row.verdicts), row.error]
            cells += [int(bool(row.verdicts[c]["passed"])) if c in row.verdicts else ""
                      for c in columns]
            writer.writerow(cells)
    return columns


def write_summary(rows: list[Row], columns: list[str], path: Path, seconds: float) -> None:
    """``grades.md``: per file and per checker, with the statuses of the failed checks."""
    lines = [f"# Grades: {len(rows)} files, {seconds:.0f} s", "",
             "| file | status | passed | seconds | note |", "|---|---|---|---|---|"]
    for row in rows:
        note = row.error.replace("|", "\\|")
        lines.append(f"| {row.file} | {row.status} | {row.passed()} / {len(row.verdicts)} | "
                     f"{row.seconds:.1f} | {note} |")
    lines += ["", "| checker | passed | not implemented | needs an earlier exercise | failed "
              "| never ran |", "|---|---|---|---|---|---|"]
    for column in columns:
        statuses = [row.verdicts[column]["status"] if column in row.verdicts else "never ran"
                    for row in rows]
        counts = [statuses.count(s) for s in ("passed", "not-implemented",
                                              "needs-earlier-exercise", "failed", "never ran")]
        lines.append(f"| {column} | " + " | ".join(map(str, counts)) + " |")
    lines += ["", "Statuses: " + "; ".join(f"**{k}**: {v}" for k, v in STATUSES.items()) + "."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def grade_folder(folder: Path, out: Path | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[list[Row], Path]:
    """Grade every file under ``folder``; returns the rows and the output folder."""
    out = out or folder / "grades"
    files = submissions(folder, out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for path in files:
        row = grade_notebook(path, folder, timeout_s, out / "executed")
        print(f"{row.file}: {row.status}, {row.passed()} / {len(row.verdicts)} checks passed, "
              f"{row.seconds:.1f} s" + (f" ({row.error})" if row.error else ""), flush=True)
        rows.append(row)
    columns = write_csv(rows, out / "grades.csv")
    write_summary(rows, columns, out / "grades.md", time.perf_counter() - start)
    return rows, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    parser.add_argument("--out", type=Path, help="output folder (default SUBMISSIONS/grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per notebook (default {DEFAULT_TIMEOUT_S})")
    args = parser.parse_args()
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    start = time.perf_counter()
    rows, out = grade_folder(args.submissions, args.out, args.timeout)
    print(f"{len(rows)} files graded in {time.perf_counter() - start:.0f} s: "
          f"{out / 'grades.csv'}, {out / 'grades.md'}")
    print(json.dumps({s: sum(r.status == s for r in rows) for s in STATUSES}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
