"""How long a chapter takes to read and run, from its cells (the figure in its title cell).

The model, per notebook (exercises not included: the title cells say "plus the exercises"):

- prose at 200 words a minute (every markdown word, ``<details>`` blocks included: the
  self-check answers are part of the reading; 200 wpm is below the ~240 wpm measured for
  silent reading of non-fiction, Brysbaert 2019, because the prose here is technical);
- code at 4 s a line (non-blank lines that are not comments);
- 10 s per code cell to run it and look at what it prints or draws;
- 2 minutes per widget cell (a cell that builds a ``course_lib.widgets`` widget: the
  learner moves its sliders).

Usage:
    python tools/reading_time.py [notebooks/02a_*.ipynb ...]   # default: every chapter
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE = 200
SECONDS_PER_CODE_LINE = 4
SECONDS_PER_CODE_CELL = 10
MINUTES_PER_WIDGET = 2
WORD = re.compile(r"\w+")

_SPEC = importlib.util.spec_from_file_location("bench_tool", REPO_ROOT / "tools" / "bench.py")
_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_bench)


@dataclass(frozen=True)
class ReadingTime:
    """What one notebook asks of a learner, and the minutes the model gives it."""

    words: int
    code_lines: int
    code_cells: int
    widget_cells: int

    @property
    def minutes(self) -> float:
        return (self.words / WORDS_PER_MINUTE
                + (self.code_lines * SECONDS_PER_CODE_LINE
                   + self.code_cells * SECONDS_PER_CODE_CELL) / 60
                + self.widget_cells * MINUTES_PER_WIDGET)


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def reading_time(path: Path) -> ReadingTime:
    """Count the words, code lines, code cells and widget cells of the notebook at ``path``."""
    import nbformat  # the bench's widget-cell finder reads a NotebookNode

    notebook = nbformat.reads(Path(path).read_text(encoding="utf-8"), as_version=4)
    words = code_lines = code_cells = 0
    for cell in notebook["cells"]:
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            words += len(WORD.findall(source))
        elif cell["cell_type"] == "code":
            code_cells += 1
            code_lines += sum(1 for line in source.splitlines()
                              if line.strip() and not line.strip().startswith("#"))
    widgets = {index for index, _, _ in _bench.widget_cells(notebook)}
    return ReadingTime(words, code_lines, code_cells, len(widgets))


STATED = re.compile(r"\babout (\d+(?:\.\d+)?) (minutes|hours?)\b", re.IGNORECASE)


def stated_minutes(path: Path) -> float | None:
    """The estimate written in the notebook's title cell ("About 40 minutes"), in minutes."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    match = STATED.search(_source(cells[0])) if cells else None
    if match is None:
        return None
    value = float(match.group(1))
    return value * 60 if match.group(2).lower().startswith("hour") else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    print(f"{'notebook':<48} {'words':>6} {'code':>5} {'cells':>5} {'widgets':>7} "
          f"{'model':>6} {'stated':>6}")
    for path in paths:
        time = reading_time(path)
        stated = stated_minutes(path)
        print(f"{path.name:<48} {time.words:>6} {time.code_lines:>5} {time.code_cells:>5} "
              f"{time.widget_cells:>7} {time.minutes:>6.1f} "
              f"{'-' if stated is None else f'{stated:.0f}':>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
