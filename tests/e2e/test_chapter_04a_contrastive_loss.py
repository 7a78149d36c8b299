"""Chapter 04a in the browser: the temperature explorer's softmax bars and loss follow tau."""

import re

import torch
import torch.nn.functional as F
from lab_driver import changed, drag, equals, plotly_titles, press, readout, slider, trace_paths

CHAPTER = "04a_contrastive_loss.ipynb"
# The chapter's worked 3x3 cosine-similarity matrix (rows: images, columns: captions).
SIMILARITY = torch.tensor(((0.9, 0.2, 0.1), (0.3, 0.8, 0.2), (0.1, 0.1, 0.7)),
                          dtype=torch.float64)
TITLE = re.compile(r"^tau = (\d+\.\d{3}): symmetric loss (\d+\.\d{4})$")
BARS = ".barlayer .trace path"


def clip_loss(tau: float) -> float:
    """The symmetric InfoNCE loss by F.cross_entropy: images->captions and captions->images."""
    logits, targets = SIMILARITY / tau, torch.arange(3)
    return float((F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2)


def test_temperature_explorer_follows_tau(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    # The explorer comes before the part's logit scale and data: run down to it only.
    seconds = chapter.run_through("temperature_explorer(", timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("temperature_explorer(", plots=1)
    tau = slider(area, "tau")

    def title():
        titles = plotly_titles(area)
        assert len(titles) == 1, titles
        match = TITLE.match(titles[0])
        assert match, f"unexpected title {titles[0]!r}"
        return match.group(1), match.group(2)

    def bars():
        return trace_paths(area, BARS)

    def legend():
        return [text.strip() for text in area.locator(".legendtext").all_text_contents()]

    start = float(readout(tau))
    equals(title, (f"{start:.3f}", f"{clip_loss(start):.4f}"), what="the title after Run All")
    shown_bars = bars()
    assert len(shown_bars) == 9, "three softmax bars for each of the three queries"

    press(tau, "End")  # tau = 10 ** 0.3: the flattest softmax on offer
    high = 10 ** 0.3
    equals(title, (f"{high:.3f}", f"{clip_loss(high):.4f}"), what="the title after End")
    shown_bars = changed(bars, shown_bars, what="the softmax bars")
    assert f"tau = {high:.4f}" in area.inner_text()

    press(tau, "ArrowLeft")  # one step of 0.01 in log10(tau)
    lower = 10 ** 0.29
    equals(title, (f"{lower:.3f}", f"{clip_loss(lower):.4f}"), what="the title after ArrowLeft")
    shown_bars = changed(bars, shown_bars, what="the softmax bars")

    # The similarity matrix is not symmetric: captions->images softmaxes differ.
    assert legend()[:3] == ["image 1", "image 2", "image 3"]
    area.locator(".widget-toggle-button", has_text="columns").click()
    equals(lambda: legend()[:3], ["text 1", "text 2", "text 3"],
           what="the bar legend after choosing the softmax over columns")
    shown_bars = changed(bars, shown_bars, what="the softmax bars (columns)")

    drag(chapter.page, tau, 0.6)  # the mouse: near log10(tau) = -2.3 + 0.6 * 2.6, tau ~ 0.18
    dragged = float(changed(lambda: readout(tau), f"{lower:.3f}", what="the tau read-out"))
    assert 0.1 <= dragged <= 0.35, f"the drag moved tau to {dragged}"
    equals(lambda: title()[0], f"{dragged:.3f}", what="tau in the title after a drag")
    shown_loss = title()[1]
    # The read-out rounds tau to 3 decimals, so the loss is compared to within that rounding.
    assert abs(float(shown_loss) - clip_loss(dragged)) < 0.05 * clip_loss(dragged) + 1e-3
    changed(bars, shown_bars, what="the softmax bars")

    shot = chapter.screenshot(screenshots, area, "temperature_explorer")
    print(f"chapter 04a: ran in {seconds:.1f} s; screenshot {shot}")
