"""What a committed chapter notebook must satisfy (used by test_notebook_hygiene.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from course_lib.colab import BOOTSTRAP_CELL, colab_badge

MAX_NOTEBOOK_BYTES = 1_000_000
MAX_REPR_CHARS = 300
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# A stored text/plain that is an object's repr: "VBox(children=...", "<Figure ...>", "tensor([...".
OBJECT_REPR = re.compile(r"^\s*(<[\w.]+[ >]|[A-Z]\w*\(|tensor\(|array\()")
MACHINE_PATH = re.compile(r"(/root/|/tmp/|/work/|/home/\w+/|/Users/\w+/|[A-Z]:\\\\Users)")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def notebook_problems(path: Path, repo_path: str | None = None) -> list[str]:
    """Every hygiene problem of one notebook file, as readable sentences (empty if clean).

    ``repo_path`` is the notebook's path inside the repository, which its Colab badge must
    point to (default ``notebooks/<file name>``).
    """
    problems = []
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        problems.append(f"file is {path.stat().st_size:,} bytes, over {MAX_NOTEBOOK_BYTES:,}")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook.get("cells", [])
    code = [c for c in cells if c["cell_type"] == "code" and _source(c).strip()]
    counts = [c.get("execution_count") for c in code]
    if any(count is None for count in counts):
        problems.append(f"{counts.count(None)} code cell(s) have no execution count (not run)")
    elif counts != list(range(1, len(counts) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(counts)} in order")
    for cell in code:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"an error output is stored: {output.get('ename')}")
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            problems.extend(f"cell {index}: {problem}" for problem in _output_problems(output))
    if "widgets" in notebook.get("metadata", {}):
        problems.append("widget state is stored in metadata.widgets (run make format-notebooks)")
    outputs = json.dumps([c.get("outputs", []) for c in code])
    if match := MACHINE_PATH.search(outputs):
        problems.append(f"an output shows an absolute path of this machine: {match.group(0)}")
    first = _source(cells[0]) if cells else ""
    if not cells or cells[0]["cell_type"] != "markdown" or not first.lstrip().startswith("# "):
        problems.append("the first cell is not a Markdown cell with a '# ' title")
    badge = colab_badge(repo_path or f"notebooks/{path.name}")
    if badge not in first:
        problems.append(f"the first cell lacks the Open-in-Colab badge {badge}")
    if not code or not _source(code[0]).startswith(BOOTSTRAP_CELL):
        problems.append("the first code cell does not start with course_lib.colab.BOOTSTRAP_CELL")
    return problems


def _output_problems(output: dict) -> list[str]:
    """A stored output that no viewer without a kernel can show properly."""
    data = output.get("data", {})
    problems = []
    if WIDGET_VIEW in data:
        problems.append("a widget view is stored (its state is not): run make format-notebooks")
    plain = data.get("text/plain", "")
    plain = "".join(plain) if isinstance(plain, list) else plain
    richer = [key for key in data if key not in ("text/plain", WIDGET_VIEW)]
    if not richer and plain.startswith("<Figure size"):
        problems.append(f"a figure is stored as its text {plain[:40]!r}, not as a picture "
                        "(return a course_lib.diagrams.Diagram or call plt.show())")
    if not richer and len(plain) > MAX_REPR_CHARS and OBJECT_REPR.match(plain):
        problems.append(f"a {len(plain):,}-character object repr is stored "
                        f"({plain[:40]!r}...): show a picture or a summary instead")
    return problems


def widget_cell_indices(code_cells: list[dict]) -> list[int]:
    """Positions (among code cells) of the cells that display a course widget or live figure.

    A cell counts when its last line builds or shows one: a call of a factory that
    ``course_lib.widgets._picture.pictured`` registered (``tone_explorer(...)``), or the name a
    previous line bound to such a call (``explorer`` after ``explorer = tone_explorer()``).
    """
    from course_lib.widgets import benchmark_factories
    from course_lib.widgets._picture import PICTURED_FACTORIES

    benchmark_factories()  # imports every widget module, which registers its factories
    call = re.compile(r"\b(" + "|".join(sorted(PICTURED_FACTORIES)) + r")\(")
    indices = []
    for index, cell in enumerate(code_cells):
        lines = [line for line in _source(cell).splitlines() if line.strip()
                 and not line.lstrip().startswith("#")]
        if not lines:
            continue
        bound = {m.group(1) for line in lines
                 if (m := re.match(r"\s*(\w+)\s*=\s*(.+)", line)) and call.search(m.group(2))}
        last = lines[-1].strip()
        shown = re.fullmatch(r"(?:_\s*=\s*)?(?:display\()?(\w+)\)?", last)
        if call.search(last) or (shown and shown.group(1) in bound):
            indices.append(index)
    return indices


# ----------------------------------------------------------------------------- chapter structure
TIME_ESTIMATE = re.compile(r"\babout \d+ (minutes|hours?)\b", re.IGNORECASE)
HEADING = re.compile(r"^#{1,3} +(.+?)\s*$", re.MULTILINE)


def structure_problems(path: Path) -> list[str]:
    """A chapter states a time estimate in its title cell and ends with "Further reading".

    The time estimate ("About 35 minutes") must be in the first cell; the last heading of the
    notebook must be "Further reading" (the papers the chapter draws from).
    """
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = []
    if not cells or not TIME_ESTIMATE.search(_source(cells[0])):
        problems.append("the title cell has no time estimate ('About N minutes')")
    headings = [heading for cell in cells if cell["cell_type"] == "markdown"
                for heading in HEADING.findall(_source(cell))]
    if not headings or headings[-1].strip().lower() != "further reading":
        last = headings[-1] if headings else None
        problems.append(f"the chapter does not end with a 'Further reading' section (its last "
                        f"heading is {last!r})")
    return problems
