"""Chapter 02a in the browser: the tokenizer box and the patch explorer."""

import re

from lab_driver import (
    changed,
    drag,
    equals,
    html_text,
    plotly_titles,
    press,
    readout,
    slider,
    trace_paths,
    wait_for,
)

CHAPTER = "02a_text_and_image_encoders.ipynb"
PATCH_TITLE = re.compile(r"^(\d+)x(\d+) image, (\d+)x(\d+) patches: (\d+) tokens$")


def _count_line(area) -> str:
    lines = wait_for(lambda: [line for line in html_text(area) if " tokens for " in line], 10,
                     "the tokenizer box's count line")
    return lines[0]


def check_tokenizer_box(chapter) -> None:
    area = chapter.output_of("tokenizer_box(")
    box = area.locator(".widget-text input")
    chips = area.locator(".widget-html-content span[style*='inline-block']")

    def shown_for(text: str):
        """(tokens, chips) once the count line describes ``text`` and matches the chips."""
        def ready():
            match = re.match(r"^(\d+) tokens for (\d+) characters \((\d+) UTF-8 bytes\)",
                             _count_line(area))
            if not match:
                return None
            tokens, characters, utf8_bytes = map(int, match.groups())
            described = (characters, utf8_bytes) == (len(text), len(text.encode("utf-8")))
            return described and tokens == chips.count() and (tokens, chips.count())

        return wait_for(ready, 10, lambda: f"the count line for {text!r}: {_count_line(area)!r}"
                        f" with {chips.count()} token chips")

    text = "a cough 😀"  # 9 characters, 12 bytes in UTF-8 (the emoji takes 4)
    box.fill(text)
    tokens, _ = shown_for(text)
    assert tokens > 0

    box.press("End")
    box.press_sequentially(" seven")  # typed key by key: every keystroke re-tokenises
    assert shown_for(text + " seven")[0] > tokens


def check_patch_explorer(chapter, screenshots):
    area = chapter.output_of("patch_explorer(", plots=1)
    patch = slider(area, "patch (px)")

    def title():
        titles = plotly_titles(area)
        assert len(titles) == 1, titles
        match = PATCH_TITLE.match(titles[0])
        assert match, f"unexpected patch explorer title {titles[0]!r}"
        return tuple(int(group) for group in match.groups())

    def expected(size, patch_size):  # whole patches per side, squared
        return (size, size, patch_size, patch_size, (size // patch_size) ** 2)

    size = title()[0]
    start = int(readout(patch))
    equals(title, expected(size, start), what="the patch title after Run All")
    grid = trace_paths(area)

    press(patch, "ArrowRight")
    equals(title, expected(size, start + 1), what="the title after ArrowRight")
    grid = changed(lambda: trace_paths(area), grid, what="the patch grid lines")

    press(patch, "End")
    largest = min(64, size)
    equals(lambda: readout(patch), str(largest), what="the read-out after End")
    equals(title, expected(size, largest), what="the title after End")
    grid = changed(lambda: trace_paths(area), grid, what="the patch grid lines")

    drag(chapter.page, patch, 0.1)  # the mouse: near the small end of 4..64
    dragged = int(changed(lambda: readout(patch), str(largest), what="the read-out"))
    assert 4 <= dragged <= 16, f"the drag moved the patch size to {dragged}"
    equals(title, expected(size, dragged), what="the title after a drag")
    changed(lambda: trace_paths(area), grid, what="the patch grid lines")
    return chapter.screenshot(screenshots, area, "patch_explorer")


def test_encoder_widgets_follow_their_controls(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    # The widgets come before the chapter's last cells; run down to the last widget only.
    seconds = chapter.run_through("patch_explorer(", timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    check_tokenizer_box(chapter)
    shots = [check_patch_explorer(chapter, screenshots)]
    print(f"chapter 02a: ran in {seconds:.1f} s; screenshots {shots}")
