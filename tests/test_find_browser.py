"""tools/find_browser.py's search order, with a fake machine; and `make test` going on past a
missing browser."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location(
        "find_browser", REPO_ROOT / "tools" / "find_browser.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fb = _load()


class FakeMachine:
    """Files that exist, executables on PATH, which of them run, what installing adds."""

    def __init__(self, environ=None, files=(), on_path=None, running=None, managed=None,
                 playwright_installs=False, apt_installs=False, root=True, debian=True):
        self.environ = dict(environ or {})
        self.files, self.on_path = set(files), dict(on_path or {})
        self.running = set(self.files) if running is None else set(running)
        self.managed, self.playwright_installs = managed, playwright_installs
        self.apt_installs, self.root, self.debian = apt_installs, root, debian
        self.commands: list[str] = []
        self.lines: list[str] = []

    def system(self):
        return fb.System(
            environ=self.environ, which=self.on_path.get, runs=self.running.__contains__,
            playwright_executable=lambda: self.managed, shell=self.shell,
            is_root=lambda: self.root, is_debian_like=lambda: self.debian,
            is_file=self.files.__contains__, python="python")

    def shell(self, command: str) -> bool:
        self.commands.append(command)
        if "playwright install" in command and self.playwright_installs:
            self.files.add(self.managed)
            self.running.add(self.managed)
            return True
        if "apt-get" in command and self.apt_installs:
            self.on_path["chromium"] = "/usr/bin/chromium"
            self.files.add("/usr/bin/chromium")
            self.running.add("/usr/bin/chromium")
            return True
        return False

    def find(self):
        return fb.find_chromium(self.system(), log=self.lines.append)


def test_course_chromium_comes_first():
    machine = FakeMachine(environ={"COURSE_CHROMIUM": "/opt/mine/chrome"},
                          files={"/opt/mine/chrome", "/usr/bin/chromium"},
                          on_path={"chromium": "/usr/bin/chromium"})
    assert machine.find() == "/opt/mine/chrome"
    assert machine.lines == ["browser search [env]: COURSE_CHROMIUM=/opt/mine/chrome: "
                             "found /opt/mine/chrome"]


def test_a_missing_course_chromium_falls_through_to_the_system_browser():
    machine = FakeMachine(environ={"COURSE_CHROMIUM": "/nonexistent"},
                          files={"/usr/bin/chromium"}, on_path={"chromium": "/usr/bin/chromium"})
    assert machine.find() == "/usr/bin/chromium"
    assert machine.lines[0] == "browser search [env]: COURSE_CHROMIUM=/nonexistent: not found"
    assert len(machine.lines) == 2 and machine.commands == []


def test_the_usual_places_are_searched_when_path_has_no_browser():
    bundle = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"
    machine = FakeMachine(files={bundle})
    assert machine.find() == bundle
    assert [line.endswith("not found") for line in machine.lines] == [False, True, False]


def test_a_browser_that_does_not_run_is_passed_over():
    machine = FakeMachine(files={"/usr/bin/chromium-browser"}, running=(),
                          on_path={"chromium-browser": "/usr/bin/chromium-browser"},
                          managed="/cache/ms-playwright/chrome", playwright_installs=True)
    assert machine.find() == "/cache/ms-playwright/chrome"
    assert "/usr/bin/chromium-browser does not run" in machine.lines[1]
    assert machine.commands == ["python -m playwright install chromium"]


def test_an_already_downloaded_playwright_browser_installs_nothing():
    machine = FakeMachine(files={"/cache/chrome"}, managed="/cache/chrome")
    assert machine.find() == "/cache/chrome"
    assert machine.commands == []


def test_apt_is_the_last_route_and_only_as_root_on_debian():
    machine = FakeMachine(managed="/cache/chrome", apt_installs=True)
    machine.on_path["apt-get"] = "/usr/bin/apt-get"
    assert machine.find() == "/usr/bin/chromium"
    assert machine.commands == ["python -m playwright install chromium",
                                "apt-get update && apt-get install -y chromium"]
    assert len(machine.lines) == 5  # env, PATH, usual places, playwright, apt: one line each

    for blocked in (dict(root=False), dict(debian=False)):
        machine = FakeMachine(apt_installs=True, on_path={"apt-get": "/usr/bin/apt-get"},
                              **blocked)
        with pytest.raises(fb.BrowserNotFound):
            machine.find()
        assert not any("apt-get" in command for command in machine.commands)


def test_nothing_found_gives_one_paragraph_with_commands_for_each_system():
    machine = FakeMachine(environ={"COURSE_CHROMIUM": "/nonexistent"}, managed="/cache/chrome",
                          on_path={"apt-get": "/usr/bin/apt-get"})
    with pytest.raises(fb.BrowserNotFound) as raised:
        machine.find()
    message = str(raised.value)
    assert "\n" not in message
    for command in ("sudo apt-get update && sudo apt-get install -y chromium",
                    "sudo snap install chromium", "sudo dnf install -y chromium",
                    "brew install --cask chromium", "playwright install --with-deps chromium",
                    "COURSE_CHROMIUM"):
        assert command in message
    assert len(machine.lines) == 5


def test_skipped_routes_say_so_and_unknown_names_are_refused():
    machine = FakeMachine(environ={"COURSE_BROWSER_SKIP": "system, apt"},
                          files={"/usr/bin/chromium"}, on_path={"chromium": "/usr/bin/chromium"})
    with pytest.raises(fb.BrowserNotFound):
        machine.find()
    assert "browser search [system]: skipped (COURSE_BROWSER_SKIP)" in machine.lines
    machine = FakeMachine(environ={"COURSE_BROWSER_SKIP": "sytem"})
    with pytest.raises(ValueError, match="COURSE_BROWSER_SKIP.*sytem"):
        machine.find()


def test_make_test_runs_every_part_past_a_missing_browser(tmp_path):
    """`make test` with a fake environment: ruff and pytest record their calls, python is the
    real one (so tools/find_browser.py really searches, with every route but COURSE_CHROMIUM
    skipped); the browser part fails and the unit and notebook parts still run."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    for name, body in (("ruff", f'echo "ruff $*" >> {calls}'),
                       ("pytest", f'echo "pytest $*" >> {calls}'),
                       ("python", f'exec {sys.executable} "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "venv" / ".installed").touch()  # newer than pyproject.toml: no install
    env = dict(os.environ, COURSE_CHROMIUM="/nonexistent",
               COURSE_BROWSER_SKIP="system,playwright,apt")
    result = subprocess.run(["make", "--no-print-directory", "test", f"VENV={tmp_path / 'venv'}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    recorded = calls.read_text().splitlines()
    assert [line.split()[0] for line in recorded] == ["ruff", "pytest", "pytest"]
    assert "--ignore=tests/e2e" in recorded[1] and recorded[2].endswith("notebooks")
    assert fb.INSTALL_HELP in result.stderr
    assert "browser search [env]: COURSE_CHROMIUM=/nonexistent: not found" in result.stderr
    assert "make test: FAILED: e2e" in result.stdout
