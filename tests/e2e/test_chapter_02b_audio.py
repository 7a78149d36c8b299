"""Chapter 02b in the browser: the mel explorer."""

import math
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
    svg_image_hrefs,
    wait_for,
)

CHAPTER = "02b_audio_encoder_and_projection.ipynb"
MEL_TITLE = re.compile(r"^log-mel of (.+): (\d+) bands x (\d+) frames \((\d+\.\d) frames/s\)$")
SAMPLE_RATE = 16000


def check_mel_explorer(chapter, screenshots):
    area = chapter.output_of("mel_explorer(", plots=1)
    n_fft, hop, n_mels = (slider(area, name) for name in ("n_fft", "hop", "n_mels"))

    def title():
        titles = plotly_titles(area)
        assert len(titles) == 1, titles
        match = MEL_TITLE.match(titles[0])
        assert match, f"unexpected mel explorer title {titles[0]!r}"
        return int(match.group(2)), int(match.group(3)), match.group(4)

    def check_readouts():
        bands, frames, per_second = title()
        hop_samples = int(readout(hop))
        assert bands == int(readout(n_mels))
        assert per_second == f"{SAMPLE_RATE / hop_samples:.1f}"
        text = " ".join(html_text(area))
        window = int(readout(n_fft))
        assert f"window {1000 * window / SAMPLE_RATE:.1f} ms" in text, text
        assert f"hop {1000 * hop_samples / SAMPLE_RATE:.1f} ms" in text, text
        tokens = frames
        for _ in range(3):  # three stride-2 convolutions, kernel 3, padding 1: ceil(L / 2)
            tokens = math.ceil(tokens / 2)
        assert f"{frames} frames for this" in text and f"-> {tokens} tokens" in text.replace(
            "\u2192", "->"), text
        return bands, frames

    # Right after Run All the plot can be on the page a moment before its title is drawn.
    wait_for(lambda: plotly_titles(area), 30, "the mel explorer's title to be drawn")
    check_readouts()
    image = svg_image_hrefs(area)
    assert image and image[0].startswith("data:image/png;base64,"), "no spectrogram image"

    bands, frames = title()[:2]
    press(hop, "ArrowRight")  # +20 samples: fewer frames per second
    equals(lambda: title()[2], f"{SAMPLE_RATE / int(readout(hop)):.1f}",
           what="frames per second in the title after hop ArrowRight")
    assert title()[1] < frames
    image = changed(lambda: svg_image_hrefs(area), image, what="the log-mel image")
    check_readouts()

    press(n_mels, "Home")  # 16 bands
    equals(lambda: title()[0], 16, what="the number of bands after n_mels Home")
    image = changed(lambda: svg_image_hrefs(area), image, what="the log-mel image")
    check_readouts()

    before_fft = readout(n_fft)
    press(n_fft, "End")  # the longest window: 1024 samples
    equals(lambda: readout(n_fft), "1024", what="the n_fft read-out after End")
    assert before_fft != "1024"
    image = changed(lambda: svg_image_hrefs(area), image, what="the log-mel image")
    check_readouts()

    drag(chapter.page, hop, 1.0)  # the mouse: the longest hop, 400 samples
    equals(lambda: readout(hop), "400", what="the hop read-out after a drag")
    equals(lambda: title()[2], f"{SAMPLE_RATE / 400:.1f}", what="frames per second")
    changed(lambda: svg_image_hrefs(area), image, what="the log-mel image")
    check_readouts()
    return chapter.screenshot(screenshots, area, "mel_explorer")


def test_mel_explorer_follows_its_controls(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    # The widget comes before the chapter's last cells; run down to it only.
    seconds = chapter.run_through("mel_explorer(", timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    shots = [check_mel_explorer(chapter, screenshots)]
    print(f"chapter 02b: ran in {seconds:.1f} s; screenshots {shots}")
