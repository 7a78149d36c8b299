"""The README and chapter 00 list every chapter notebook that exists, and nothing else."""

import json
import re

from test_chapter_structure import reading  # tools/reading_time.py


def _notebooks(repo_root):
    return {p.name for p in (repo_root / "notebooks").glob("*.ipynb")}


def test_readme_lists_every_notebook(repo_root):
    readme = (repo_root / "README.md").read_text()
    listed = set(re.findall(r"notebooks/(\d\d[a-z]?_\w+\.ipynb)", readme))
    assert listed == _notebooks(repo_root)


def test_welcome_chapter_map_links_every_chapter(repo_root):
    welcome = json.loads((repo_root / "notebooks" / "00_welcome.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in welcome["cells"] if c["cell_type"] == "markdown")
    linked = set(re.findall(r"\((\d\d[a-z]?_\w+\.ipynb)\)", text))
    chapters = {name for name in _notebooks(repo_root) if not name.endswith("_student.ipynb")}
    assert linked == chapters


def test_welcome_chapter_map_states_each_chapters_own_time_estimate(repo_root):
    """The map's Time column repeats the estimate in each chapter's title cell."""
    welcome = json.loads((repo_root / "notebooks" / "00_welcome.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in welcome["cells"]
                     if c["cell_type"] == "markdown")
    rows = re.findall(r"^\|[^|]+\| \[[^]]+\]\((\d\d[a-z]?_\w+\.ipynb)\) \|[^|]+\| (\d+) min \|$",
                      text, re.MULTILINE)
    assert len(rows) == len(_notebooks(repo_root) - {n for n in _notebooks(repo_root)
                                                      if n.endswith("_student.ipynb")})
    for name, minutes in rows:
        stated = reading.stated_minutes(repo_root / "notebooks" / name)
        assert int(minutes) == stated, f"{name}: the map says {minutes} min, the chapter {stated}"
