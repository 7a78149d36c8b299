"""Make the two small pictures the README shows: a chapter page of the course website and the
still picture stored behind a widget.

    python tools/readme_pictures.py      # after `make book`; needs Chromium (see README)

Writes assets/book_chapter_page.png (chapter 03a's page in the built site, 1100 x 760, 128
colours) and assets/widget_picture.png (the picture behind chapter 07's budget calculator).
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import os
import sys
import threading
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_lib.widgets._picture import widget_picture_png  # noqa: E402
from course_lib.widgets.budget_calculator import budget_calculator  # noqa: E402

CHAPTER_PAGE = "notebooks/03a_attention.html"


def _save_small(image: Image.Image, path: Path, colours: int = 128) -> None:
    image.convert("RGB").quantize(colors=colours).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {image.width} x {image.height}, "
          f"{path.stat().st_size / 1024:.0f} KB")


def chapter_page(chromium: str) -> Image.Image:
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(ROOT / "_build" / "book"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{CHAPTER_PAGE}",
                      wait_until="networkidle")
            page.locator("#a-worked-example-you-can-check-with-a-pocket-calculator").evaluate(
                "heading => heading.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            png = page.screenshot()
            browser.close()
    finally:
        server.shutdown()
    return Image.open(io.BytesIO(png))


def main() -> None:
    chromium = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
    _save_small(chapter_page(chromium), ROOT / "assets" / "book_chapter_page.png")
    picture = widget_picture_png(budget_calculator())
    _save_small(Image.open(io.BytesIO(base64.b64decode(picture))),
                ROOT / "assets" / "widget_picture.png")


if __name__ == "__main__":
    main()
