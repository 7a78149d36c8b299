"""Drive a chapter in JupyterLab through a real browser: open, run, read and move widgets.

Everything here goes through the page the learner sees: menus are clicked, sliders are moved
with the keyboard and the mouse, and plots are read back from the DOM (plotly's SVG text and
paths, image sources), never from the kernel.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Locator, Page

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
)
# JupyterLab shows a traceback like any text on stderr (warnings, progress bars): an error is a
# stderr output with a traceback, or whose last line names an exception (SyntaxError has no
# "Traceback" header).
STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|"
                       r"(^|\n)[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b(: .*)?\s*$")
KERNEL_STATUS = '.jp-StatusBar-TextItem[title^="Change kernel"]'
SLIDER_HANDLE = ".noUi-handle"
VIEWPORT_CORNER = (2, 300)  # over the left-hand activity bar: hovers no plot


@dataclass
class LabServer:
    """A running JupyterLab: its base URL, token and log file."""

    url: str
    token: str
    log: Path
    notebook_dir: Path
    shutting_down: list[threading.Thread] = field(default_factory=list)

    def notebook_url(self, name: str) -> str:
        # `reset` starts from an empty workspace, so a previous chapter's tabs never reopen.
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernel(self, name: str) -> threading.Thread:
        """End the session (and kernel) of notebook ``name`` in the background, so a finished
        chapter frees its memory while the next one starts."""
        def shut_down() -> None:
            for session in self.api("sessions"):
                if session["path"] == name:
                    self.api(f"sessions/{session['id']}", method="DELETE")

        thread = threading.Thread(target=shut_down, daemon=True)
        thread.start()
        self.shutting_down.append(thread)
        return thread


def wait_for(condition, timeout_s: float, what, interval_s: float = 0.1):
    """Poll ``condition()`` until it returns a truthy value; fail naming ``what`` otherwise
    (a string, or a callable that describes the state at the time of failure)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {described}")
        time.sleep(interval_s)


class ChapterPage:
    """One chapter notebook open in JupyterLab."""

    def __init__(self, page: Page, lab: LabServer, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name

    # -- opening and running ------------------------------------------------------------------
    def open(self, timeout_s: float = 90, in_place: bool = False) -> ChapterPage:
        """Load JupyterLab on this chapter (``in_place``: open it in the JupyterLab already
        loaded in the page, with File > Open from Path...), wait for its cells and its kernel."""
        # The cells as stored: used to find a widget's cell (the page creates cell editors
        # lazily, so their text is not always in the DOM).
        self.cells = json.loads((self.lab.notebook_dir / self.name).read_text())["cells"]
        start = time.monotonic()
        if in_place:
            self.menu("File", "Open from Path…")
            path_box = self.page.locator(".jp-Dialog input")
            path_box.fill(self.name)
            path_box.press("Enter")
        else:
            self.page.goto(self.lab.notebook_url(self.name))
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
        wait_for(lambda: self.page.locator(".jp-Notebook .jp-Cell").count() == len(self.cells),
                 timeout_s, f"the {len(self.cells)} cells of {self.name} to show")
        shown = time.monotonic()
        self.wait_for_kernel_idle(timeout_s)
        self.open_seconds = (shown - start, time.monotonic() - shown)
        print(f"{self.name}: shown in {self.open_seconds[0]:.1f} s, "
              f"kernel idle {self.open_seconds[1]:.1f} s later")
        self.page.keyboard.press("Escape")  # command mode, in case a cell grabbed the focus
        # Fold the file browser away (click its current tab): room for wide plots.
        folder = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if folder.count():
            folder.click()
        return self

    def close(self, timeout_s: float = 30) -> None:
        """File > Close All Tabs, discarding the run's outputs (the file is never saved)."""
        self.menu("File", "Close All Tabs")

        def closed() -> bool:
            discard = self.page.locator(".jp-Dialog .jp-Dialog-button", has_text="Discard")
            if discard.count():
                discard.first.click()
            return self.page.locator(".jp-NotebookPanel").count() == 0

        wait_for(closed, timeout_s, f"{self.name} to close")

    def kernel_status(self) -> str:
        items = self.page.locator(KERNEL_STATUS)
        return items.first.inner_text() if items.count() else ""

    def wait_for_kernel_idle(self, timeout_s: float) -> None:
        wait_for(lambda: self.kernel_status().endswith("| Idle"), timeout_s,
                 lambda: f"the kernel of {self.name} to be Idle (status: {self.kernel_status()!r})")

    def menu(self, menu: str, item: str) -> None:
        """Click ``menu`` in the menu bar, then its entry ``item`` (exact labels)."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        entry = self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$"))
        entry.click()

    def prompts(self) -> list[str]:
        """Every code cell's prompt, e.g. ``[3]:``, ``[*]:`` (running) or ``[ ]:``."""
        return [text.strip() for text in
                self.page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
                .all_text_contents()]

    def clear_outputs(self) -> None:
        """Edit > Clear Outputs of All Cells: stored execution counts cannot pass for new ones."""
        self.menu("Edit", "Clear Outputs of All Cells")
        wait_for(lambda: all(p == "[ ]:" for p in self.prompts()), 30, "the outputs to clear")

    def run_all(self, timeout_s: float) -> float:
        """Clear every output, then Run > Run All Cells; wait until every code cell has a
        fresh execution count and the kernel is Idle. Returns the seconds it took."""
        self.clear_outputs()
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        self._wait_until_ran(len(self.prompts()), timeout_s)
        return time.monotonic() - start

    def run_through(self, code: str, timeout_s: float) -> float:
        """Run every cell from the top down to the code cell containing ``code`` (the last
        widget of a chapter), skipping the rest (training runs the widgets do not need):
        select the cell after it, then Run > Run All Above Selected Cell."""
        cell_index = self.cell_index(code)
        if cell_index == len(self.cells) - 1:
            return self.run_all(timeout_s)
        code_cells_to_run = sum(cell["cell_type"] == "code"
                                for cell in self.cells[:cell_index + 1])
        cells = self.page.locator(".jp-Notebook .jp-Cell")
        self.clear_outputs()
        cells.nth(cell_index + 1).locator(".jp-InputPrompt").click()
        start = time.monotonic()
        self.menu("Run", "Run All Above Selected Cell")
        self._wait_until_ran(code_cells_to_run, timeout_s)
        return time.monotonic() - start

    def _wait_until_ran(self, code_cells: int, timeout_s: float) -> None:
        def finished() -> bool:
            errors = self.error_outputs()  # Run All stops at an error: say so at once
            assert not errors, f"a cell of {self.name} failed:\n" + "\n".join(errors)
            prompts = self.prompts()
            if "[*]:" in prompts or not all(re.fullmatch(r"\[\d+\]:", p)
                                            for p in prompts[:code_cells]):
                return False
            return self.kernel_status().endswith("| Idle")

        wait_for(finished, timeout_s, lambda: f"the first {code_cells} code cells of {self.name}"
                 f" to finish ({self._prompt_summary()})", interval_s=0.5)

    def _prompt_summary(self) -> str:
        prompts = self.prompts()
        running = [i for i, p in enumerate(prompts) if p == "[*]:"]
        return f"{len(prompts)} code cells, running/queued cells {running[:5]}"

    def execution_counts(self) -> list[int]:
        """The execution counts of the cells that ran, top to bottom."""
        return [int(p[1:-2]) for p in self.prompts() if p[1:-2].isdigit()]

    def error_outputs(self) -> list[str]:
        """The text of every error (traceback) output and every widget that failed to show."""
        stderr = self.page.locator(f".jp-Notebook {STDERR_OUTPUT}").all_text_contents()
        errors = [text for text in stderr if TRACEBACK.search(text)]
        broken = self.page.locator(".jp-Notebook .jp-OutputArea-output",
                                   has_text="Error displaying widget").all_text_contents()
        return [text[-3000:] for text in errors + broken]

    # -- widgets ------------------------------------------------------------------------------
    def cell_index(self, code: str) -> int:
        """The index (among all cells) of the one code cell whose source contains ``code``."""
        found = [index for index, cell in enumerate(self.cells)
                 if cell["cell_type"] == "code" and code in "".join(cell["source"])]
        assert len(found) == 1, f"expected one code cell of {self.name} containing {code!r}, " \
                                f"found {len(found)}"
        return found[0]

    def output_of(self, code: str, plots: int = 0) -> Locator:
        """The output area of the code cell whose source contains ``code``, once its widgets
        (and at least ``plots`` plotly plots) have rendered."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(self.cell_index(code))
        output = cell.locator(".jp-Cell-outputArea")
        output.scroll_into_view_if_needed()
        # Widget views render after the kernel has answered: wait for them.
        output.locator(".jupyter-widgets").first.wait_for(state="visible")
        wait_for(lambda: output.locator(".js-plotly-plot:has(.main-svg)").count() >= plots, 30,
                 f"{plots} plotly plot(s) to render under the cell containing {code!r}")
        kinds = top_level_outputs(output)
        # The widget's bundle also carries its still picture: a live front end shows one of
        # them, so the widget appears once and its picture not at all.
        assert kinds.count("widget") >= 1 and "image" not in kinds, (
            f"the cell containing {code!r} shows {kinds}: expected the live widget alone")
        return output

    def screenshot(self, directory: Path, area: Locator, widget: str) -> Path:
        """Scroll ``area`` to the top of the notebook panel and save the page as
        ``<chapter>-<widget>.png``."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{Path(self.name).stem}-{widget}.png"
        area.evaluate("element => element.closest('.jp-Cell').scrollIntoView({block: 'start'})")
        self.page.mouse.move(VIEWPORT_CORNER[0], VIEWPORT_CORNER[1])  # no hover tool bars
        self.page.wait_for_timeout(300)  # let plotly finish drawing after the scroll
        self.page.screenshot(path=str(path))
        return path


def top_level_outputs(output_area: Locator) -> list[str]:
    """What each output of one cell shows ("widget", "image", "text", ...), not looking inside
    widgets (whose own Output areas hold images of their own)."""
    return output_area.evaluate("""area => {
        const outer = area.classList.contains('jp-OutputArea') ? area
                      : area.querySelector('.jp-OutputArea');
        return Array.from(outer.children).filter(c => c.classList.contains('jp-OutputArea-child'))
            .map(child => {
                const shown = child.querySelector(':scope > .jp-OutputArea-output');
                if (!shown) return 'other';
                if (shown.classList.contains('jupyter-widgets')
                    || shown.querySelector(':scope > .jupyter-widgets, :scope > .lm-Widget')
                    ) return 'widget';
                if (shown.classList.contains('jp-RenderedImage')) return 'image';
                return 'text';
            });
    }""")


def slider(area: Locator, description: str) -> Locator:
    """The ipywidgets slider in ``area`` whose label is exactly ``description``."""
    label = area.page.locator(".widget-label",
                              has_text=re.compile(f"^{re.escape(description)}$"))
    found = area.locator(".widget-slider").filter(has=label)
    assert found.count() == 1, f"expected one slider labelled {description!r}, got {found.count()}"
    return found


def readout(slider_box: Locator) -> str:
    """A slider's read-out text; a negative value's Unicode minus (U+2212) is read as "-"."""
    return slider_box.locator(".widget-readout").inner_text().strip().replace("\u2212", "-")


def press(slider_box: Locator, key: str) -> None:
    """Focus the slider's handle and press ``key`` (ArrowRight, End, Home...)."""
    handle = slider_box.locator(SLIDER_HANDLE)
    handle.focus()
    handle.press(key)


def drag(page: Page, slider_box: Locator, fraction: float) -> None:
    """Drag the slider's handle with the mouse to ``fraction`` (0..1) of its track."""
    track = slider_box.locator(".noUi-target").bounding_box()
    handle = slider_box.locator(SLIDER_HANDLE).bounding_box()
    assert track and handle, "the slider is not visible"
    start_x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(start_x, y)
    page.mouse.down()
    target_x = track["x"] + fraction * track["width"]
    page.mouse.move(target_x, y, steps=8)
    page.mouse.up()


def changed(read, before, timeout_s: float = 10.0, what: str = "the plot"):
    """Wait until ``read()`` differs from ``before``; return the new value."""
    holder = {}

    def differs():
        holder["now"] = read()
        return holder["now"] != before

    wait_for(differs, timeout_s, f"{what} to change from {str(before)[:200]!r}")
    return holder["now"]


def steady(read, quiet_s: float = 0.5, timeout_s: float = 10.0, what: str = "the page"):
    """``read()`` once it has stopped changing for ``quiet_s`` (a baseline to compare with)."""
    last, since = read(), time.monotonic()
    deadline = since + timeout_s
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} kept changing for {timeout_s:.0f} s")
        time.sleep(0.1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return last


def equals(read, expected, timeout_s: float = 10.0, what: str = "the plot"):
    """Wait until ``read()`` equals ``expected``; fail showing the last value seen."""
    holder = {}

    def same():
        holder["now"] = read()
        return holder["now"] == expected

    try:
        wait_for(same, timeout_s, what)
    except AssertionError:
        raise AssertionError(f"{what}: expected {expected!r}, the page shows "
                             f"{holder.get('now')!r}") from None
    return expected


def plotly_titles(area: Locator) -> list[str]:
    """Text of every plotly main title (``.gtitle``) in ``area`` (SVG: use text content)."""
    return [t.strip() for t in area.locator(".gtitle").all_text_contents()]


def trace_paths(area: Locator, selector: str = ".scatterlayer .trace path.js-line") -> list[str]:
    """The SVG path data of plotly traces: changes whenever the plotted numbers change."""
    return [p.get_attribute("d") or "" for p in area.locator(selector).all()]


def plotly_traces(area: Locator) -> list[dict]:
    """The traces plotly.js drew in the first plot of ``area`` (name, x, y), read from the
    plot element itself: the numbers behind the bars and lines on screen."""
    return area.locator(".js-plotly-plot").first.evaluate(
        "plot => plot.data.map(trace => ({name: trace.name ?? null, "
        "x: Array.from(trace.x ?? []), y: Array.from(trace.y ?? [])}))")


def image_sources(area: Locator, selector: str = "img") -> list[str]:
    return [img.get_attribute("src") or "" for img in area.locator(selector).all()]


def svg_image_hrefs(area: Locator) -> list[str]:
    """plotly heatmaps and Image traces are drawn as SVG ``<image>`` elements."""
    return [img.get_attribute("href") or img.get_attribute("xlink:href") or ""
            for img in area.locator("svg image").all()]


def html_text(area: Locator, selector: str = ".widget-html-content") -> list[str]:
    return [t.strip() for t in area.locator(selector).all_inner_texts()]
