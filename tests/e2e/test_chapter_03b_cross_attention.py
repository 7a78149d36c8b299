"""Chapter 03b in the browser: the attention map over the MRI slice (head slider, query token)."""

import re

from lab_driver import changed, drag, equals, plotly_titles, press, readout, slider, svg_image_hrefs

CHAPTER = "03b_cross_attention_at_work.ipynb"
VIEWER_TITLE = re.compile(r"^'(.+)', head (\d+): max weight (0\.\d{3}|1\.000) at patch "
                          r"\(row (\d+), col (\d+)\)$")


def test_image_attention_viewer_follows_its_controls(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    # -- the attention map over the MRI slice: head slider and query-token dropdown -------------
    viewer = chapter.output_of("image_attention_viewer(", plots=1)
    head = slider(viewer, "head")
    heads = int(float(head.locator(".noUi-handle").get_attribute("aria-valuemax"))) + 1

    def viewer_title():
        found = plotly_titles(viewer)
        assert len(found) == 1, found
        match = VIEWER_TITLE.match(found[0])
        assert match, f"unexpected viewer title {found[0]!r}"
        return match.group(1), int(match.group(2)), found[0]

    word, shown_head, _ = viewer_title()
    assert shown_head == int(readout(head)) == 0
    overlay = svg_image_hrefs(viewer)
    press(head, "ArrowRight")
    equals(lambda: viewer_title()[:2], (word, 1), what="the viewer's title after ArrowRight")
    assert changed(lambda: svg_image_hrefs(viewer), overlay, what="the attention map") != overlay

    overlay = svg_image_hrefs(viewer)
    drag(chapter.page, head, 1.0)  # the mouse, to the last head
    equals(lambda: readout(head), str(heads - 1), what="the head read-out after a drag")
    equals(lambda: viewer_title()[:2], (word, heads - 1), what="the title after a drag")
    assert changed(lambda: svg_image_hrefs(viewer), overlay, what="the attention map") != overlay

    dropdown = viewer.locator(".widget-dropdown select")
    labels = dropdown.locator("option").all_inner_texts()
    overlay = svg_image_hrefs(viewer)
    dropdown.select_option(label=labels[1])
    equals(lambda: viewer_title()[:2], (labels[1], heads - 1),
           what="the title after choosing another query token")
    assert changed(lambda: svg_image_hrefs(viewer), overlay, what="the attention map") != overlay
    viewer_shot = chapter.screenshot(screenshots, viewer, "image_attention_viewer")
    print(f"chapter 03b: ran in {seconds:.1f} s; screenshot {viewer_shot}")
