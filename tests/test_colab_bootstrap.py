"""The bootstrap cell, run for real against a simulated Colab (a fake google.colab module)."""

import importlib.util
import subprocess

import pytest

from course_lib.colab import BOOTSTRAP_CELL, COLAB_CHECKOUT, COURSE_REPO_URL, colab_badge


@pytest.fixture
def recorded_commands(monkeypatch):
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(list(cmd)))
    monkeypatch.setattr(importlib, "invalidate_caches", lambda: None)
    return commands


def _run_cell(monkeypatch, course_lib_importable: bool) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name == "course_lib":
            return real_find_spec(name) if course_lib_importable else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    exec(compile(BOOTSTRAP_CELL, "bootstrap", "exec"), {})


def test_outside_colab_the_cell_does_nothing(monkeypatch, recorded_commands):
    _run_cell(monkeypatch, course_lib_importable=False)
    assert recorded_commands == []


def test_in_colab_without_the_course_it_clones_and_installs(
    monkeypatch, recorded_commands, fake_colab
):
    _run_cell(monkeypatch, course_lib_importable=False)
    clone, install, extras = recorded_commands
    assert clone[:2] == ["git", "clone"] and COURSE_REPO_URL in clone and COLAB_CHECKOUT in clone
    assert install[1:4] == ["-m", "pip", "install"] and "--no-deps" in install
    assert COLAB_CHECKOUT in install
    assert "anywidget" in extras
    assert __import__("sys").path[0] == COLAB_CHECKOUT


def test_in_colab_it_never_reinstalls_torch(monkeypatch, recorded_commands, fake_colab):
    _run_cell(monkeypatch, course_lib_importable=False)
    installed = [arg for cmd in recorded_commands for arg in cmd]
    assert not any(arg.startswith(("torch", "torchaudio")) for arg in installed)


def test_in_colab_with_the_course_installed_it_does_nothing(
    monkeypatch, recorded_commands, fake_colab
):
    _run_cell(monkeypatch, course_lib_importable=True)
    assert recorded_commands == []


def test_the_repository_url_is_the_one_in_the_readme(repo_root):
    assert COURSE_REPO_URL in (repo_root / "README.md").read_text()


def test_colab_badge_points_at_the_notebook_on_github():
    badge = colab_badge("notebooks/00_welcome.ipynb")
    assert "colab-badge.svg" in badge
    assert badge.endswith("multimodal-fusion-course/blob/main/notebooks/00_welcome.ipynb)")
