"""The course website (`make book`) in a real browser: every chapter page loads its images and
pictures, renders its maths, and links only to pages that exist.

The book is built once for the session from the committed notebooks (nothing is re-executed)
and served on a loopback port, as a static host would serve it.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / "_build" / "book"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
sys.path.insert(0, str(REPO_ROOT / "tests"))
from notebook_hygiene import widget_cell_indices  # noqa: E402

CHAPTERS = sorted(p for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")
                  if not p.stem.endswith("_student"))
# Remote resources cannot load on an offline machine (the Colab badge): only they may fail.
LOCAL_HOSTS = {"127.0.0.1", ""}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="session")
def book_url():
    started = time.perf_counter()
    result = subprocess.run(["make", "--no-print-directory", "book"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"make book failed:\n{result.stdout[-3000:]}{result.stderr}"
    print(f"make book: {time.perf_counter() - started:.1f} s")
    handler = functools.partial(_QuietHandler, directory=str(BUILD))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _is_local(url: str) -> bool:
    return urlparse(url).hostname in LOCAL_HOSTS or url.startswith("data:")


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message) -> None:
        # a resource that fails to load is reported below with its address
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console error: {message.text}")

    def on_failed(request) -> None:
        if _is_local(request.url):
            problems.append(f"failed to load {request.url}")

    def on_response(response) -> None:
        if response.status >= 400 and _is_local(response.url):
            problems.append(f"HTTP {response.status} for {response.url}")

    page.on("console", on_console)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.goto(url, wait_until="networkidle")
    return page, problems


def _internal_links_resolve(page, page_url: str) -> list[str]:
    broken = []
    own_ids = set(page.evaluate("() => Array.from(document.querySelectorAll('[id]'), e => e.id)"))
    for href in page.evaluate("() => Array.from(document.links, a => a.href)"):
        parsed = urlparse(href)
        if parsed.hostname not in LOCAL_HOSTS:
            continue
        if parsed.path == urlparse(page_url).path:
            if parsed.fragment and unquote(parsed.fragment) not in own_ids:
                broken.append(href)
            continue
        target = BUILD / unquote(parsed.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(href)
    return broken


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem.split("_")[0])
def test_chapter_page_renders(browser, book_url, notebook):
    url = f"{book_url}/notebooks/{notebook.stem}.html"
    page, problems = _open(browser, url)
    try:
        page.wait_for_timeout(300)  # MathJax typesets after load
        title = page.locator("h1").first.inner_text()
        assert title.startswith("Chapter"), f"{notebook.name}: page title {title!r}"
        unloaded = page.evaluate("""() => Array.from(document.images)
            .filter(i => (i.src.startsWith('data:') || new URL(i.src).hostname === '127.0.0.1')
                         && !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))""")
        assert not unloaded, f"{notebook.name}: images that did not load: {unloaded}"
        sources = json.loads(notebook.read_text())["cells"]
        has_maths = any(c["cell_type"] == "markdown" and re.search(r"\$[^$\n]+\$",
                                                                   "".join(c["source"]))
                        for c in sources)
        if has_maths:
            assert page.locator("mjx-container").count() > 0, f"{notebook.name}: no MathJax"
        text = page.locator("article").inner_text()
        assert "$$" not in text and not re.search(r"\\\\(frac|sqrt|sum)\{", text), (
            f"{notebook.name}: raw LaTeX left on the page")
        assert "VBox(children" not in text, f"{notebook.name}: a widget shows as its repr"
        cells = page.locator("div.cell")
        code_cells = [c for c in sources if c["cell_type"] == "code"]
        assert cells.count() == len(code_cells), f"{notebook.name}: cells on the page"
        for index in widget_cell_indices(code_cells):
            picture = cells.nth(index).locator(".cell_output img")
            assert picture.count() >= 1, f"{notebook.name}: code cell {index} shows no picture"
            assert picture.first.evaluate("i => i.naturalWidth") > 0
        broken = _internal_links_resolve(page, url)
        assert not broken, f"{notebook.name}: links to missing pages: {broken}"
        assert not problems, f"{notebook.name}: {problems}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"book-{notebook.stem}.png"))
    finally:
        page.close()


def test_home_page_is_the_readme_with_the_chapter_list(browser, book_url):
    page, problems = _open(browser, f"{book_url}/index.html")
    try:
        page.wait_for_url(re.compile(r".*/book/index\.html$"))
        page.wait_for_load_state("networkidle")
        assert "Multimodal fusion: an interactive course" in page.locator("h1").first.inner_text()
        navigation = page.locator("nav.bd-links").inner_text()
        for notebook in CHAPTERS:
            chapter = json.loads(notebook.read_text())["cells"][0]["source"][0]
            assert chapter.lstrip("# ").strip()[:20] in navigation, notebook.name
        assert not _internal_links_resolve(page, page.url)
        assert not problems, problems
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "book-home.png"))
    finally:
        page.close()


def test_search_finds_a_chapter(browser, book_url):
    page, problems = _open(browser, f"{book_url}/search.html?q=cross-attention")
    try:
        results = page.locator("#search-results li")
        results.first.wait_for(timeout=15_000)
        assert results.count() >= 1
        assert not problems, problems
    finally:
        page.close()
