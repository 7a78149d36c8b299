"""One JupyterLab server (started with `make lab`) and one headless chromium per test session;
the chapters open one after another in the same JupyterLab tab.

The server serves the repository's notebooks/ with the settings that `make lab` ships
(.jupyter/lab/user-settings), plus one override for the tests only: autosave is off, so
running a chapter in the browser never writes to the committed notebook. Workspaces go to a
temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from lab_driver import CHROMIUM_FLAGS, ChapterPage, LabServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
START_TIMEOUT_S = 120
VIEWPORT = {"width": 1400, "height": 1200}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find_browser_module():
    """tools/find_browser.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "find_browser", REPO_ROOT / "tools" / "find_browser.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """A working Chromium, by tools/find_browser.py's search (`make e2e` runs it first and
    passes its answer in COURSE_CHROMIUM, so this finds it at once)."""
    find_browser = _find_browser_module()
    try:
        return Path(find_browser.find_chromium())
    except find_browser.BrowserNotFound as error:
        pytest.fail(str(error), pytrace=False)


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
    url, server = f"http://127.0.0.1:{port}", None
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
        server = LabServer(url=url, token=token, log=log_path, notebook_dir=repo_root / "notebooks")
        yield server
    finally:
        for thread in server.shutting_down if server else ():
            thread.join(timeout=30)
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


@pytest.fixture(scope="session")
def lab_tab(browser):
    """The browser tab that holds JupyterLab: loaded once, then each chapter opens in it
    (loading JupyterLab takes seconds). A failed test leaves it behind: the next gets a new one.
    """
    holder = {}
    yield holder
    if "context" in holder:
        holder["context"].close()


@pytest.fixture
def open_chapter(request, lab_tab, browser, lab, repo_root):
    """Open a chapter in JupyterLab; afterwards close it without saving, end its kernel and
    check that nothing was written. A failed test leaves screenshots/<chapter>-FAILED.png."""
    opened = []

    def _open(name: str) -> ChapterPage:
        assert (repo_root / "notebooks" / name).exists(), f"notebooks/{name} is missing"
        in_place = "page" in lab_tab
        if not in_place:
            lab_tab["context"] = browser.new_context(viewport=VIEWPORT)
            lab_tab["page"] = lab_tab["context"].new_page()
            lab_tab["page"].set_default_timeout(30_000)
        chapter = ChapterPage(lab_tab["page"], lab, name)
        opened.append(chapter)
        return chapter.open(in_place=in_place)

    yield _open
    for chapter in opened:
        if getattr(request.node, "call_failed", False):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            failed = SCREENSHOTS / f"{Path(chapter.name).stem}-FAILED.png"
            chapter.page.screenshot(path=str(failed))
            print(f"the page when the test failed: {failed}")
            lab_tab.pop("context").close()
            lab_tab.pop("page")
        else:
            chapter.close()
        lab.shut_down_kernel(chapter.name)
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
