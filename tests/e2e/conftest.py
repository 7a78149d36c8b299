"""One JupyterLab server (started with `make lab`) and one headless chromium per test session.

The server serves the repository's notebooks/ with the settings that `make lab` ships
(.jupyter/lab/user-settings), plus one override for the tests only: autosave is off, so
running a chapter in the browser never writes to the committed notebook. Workspaces go to a
temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from lab_driver import CHROMIUM_FLAGS, ChapterPage, LabServer

CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = ("the browser tests drive Debian's chromium: install it with "
                "`apt-get update && apt-get install -y chromium` (as root), or point "
                "COURSE_CHROMIUM at a Chromium executable")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
START_TIMEOUT_S = 120
VIEWPORT = {"width": 1400, "height": 1200}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def lab(repo_root, tmp_path_factory) -> LabServer:
    """`make lab` on a free loopback port with a token; stopped at the end of the session."""
    scratch = tmp_path_factory.mktemp("lab")
    app_settings = scratch / "app-settings"
    app_settings.mkdir()
    (app_settings / "overrides.json").write_text(
        json.dumps({"@jupyterlab/docmanager-extension:plugin": {"autosave": False}}))
    port, token = _free_port(), "course-e2e-token"
    lab_args = (f"--no-browser --ip=127.0.0.1 --IdentityProvider.token={token} "
                f"--LabApp.app_settings_dir={app_settings}")
    env = dict(os.environ, JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"))
    log_path = scratch / "lab.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={lab_args}"],
            cwd=repo_root, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-3000:]
                    pytest.fail(f"`make lab` did not serve JupyterLab on {url}:\n{tail}")
                time.sleep(0.5)
        yield LabServer(url=url, token=token, log=log_path, notebook_dir=repo_root / "notebooks")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path), headless=True,
                                              args=list(CHROMIUM_FLAGS))
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def open_chapter(request, browser, lab, repo_root):
    """Open a chapter in a fresh browser context; afterwards check that nothing was saved.
    When the test fails, the page is saved as screenshots/<chapter>-FAILED.png."""
    opened = []

    def _open(name: str) -> ChapterPage:
        assert (repo_root / "notebooks" / name).exists(), f"notebooks/{name} is missing"
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(30_000)
        opened.append((context, page, name))
        return ChapterPage(page, lab, name).open()

    yield _open
    for context, page, name in opened:
        if getattr(request.node, "call_failed", False):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            failed = SCREENSHOTS / f"{Path(name).stem}-FAILED.png"
            page.screenshot(path=str(failed))
            print(f"the page when the test failed: {failed}")
        context.close()
    lab.shut_down_kernels()
    saved = [line for line in lab.log.read_text().splitlines() if "Saving file" in line]
    assert not saved, f"the browser session wrote to a notebook: {saved}"


_SAVED = []


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where each chapter test saves its screenshots (reported at the end of the run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _SAVED.append(SCREENSHOTS)
    return SCREENSHOTS


def pytest_terminal_summary(terminalreporter):
    if _SAVED:
        terminalreporter.write_line(f"browser test screenshots: {SCREENSHOTS}")
