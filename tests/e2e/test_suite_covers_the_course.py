"""The browser suite keeps up with the course, and `make lab` ships its quiet settings."""

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = (".jupyter/lab/user-settings/@jupyterlab/apputils-extension/"
            "notification.jupyterlab-settings")


def _chapters_with_widgets(repo_root: Path) -> set[str]:
    chapters = set()
    for notebook in (repo_root / "notebooks").glob("[0-9][0-9]*_*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        sources = ("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        if any("course_lib.widgets." in source and "import" in source for source in sources):
            chapters.add(notebook.name.split("_")[0])
    return chapters


def test_every_chapter_with_widgets_has_a_browser_test(repo_root):
    tested = {path.name[len("test_chapter_"):].split("_")[0]
              for path in HERE.glob("test_chapter_*.py")}
    missing = _chapters_with_widgets(repo_root) - tested
    assert not missing, f"chapters with widgets but no tests/e2e/test_chapter_NN[a]_*.py: {missing}"


def test_make_lab_ships_settings_without_news_or_update_checks(repo_root):
    text = (repo_root / SETTINGS).read_text()
    settings = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))
    assert settings == {"checkForUpdates": False, "fetchNews": "false"}
    assert "JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/.jupyter/lab/user-settings" in (
        repo_root / "Makefile").read_text()
