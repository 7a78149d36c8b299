"""Chapter 00 in the browser: the frequency slider redraws the plotly waveform and the spectrum."""

from lab_driver import (
    changed,
    drag,
    equals,
    image_sources,
    plotly_titles,
    press,
    readout,
    slider,
    steady,
    trace_paths,
)

CHAPTER = "00_welcome.ipynb"


def test_tone_explorer_follows_the_frequency_slider(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=120)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("tone_explorer(frequency_hz=440.0)", plots=1)
    frequency = slider(area, "frequency (Hz)")

    def title():
        return plotly_titles(area)

    def waveform():
        return trace_paths(area)

    def spectrum():  # the matplotlib figure, a PNG in an Output widget
        return image_sources(area)

    def both_redrawn(before_waveform, before_spectrum, what):
        changed(waveform, before_waveform, what=f"the waveform's line after {what}")
        changed(spectrum, before_spectrum, what=f"the spectrum PNG after {what}")
        return waveform(), spectrum()

    # The chapter itself sets the slider to 1000 Hz in a later cell: the page shows it.
    equals(lambda: readout(frequency), "1000.00", what="the slider's read-out after Run All")
    equals(title, ["Waveform of a 1000 Hz tone"], what="the waveform title after Run All")
    drawn = steady(lambda: (waveform(), spectrum()), what="the plots after Run All")
    assert drawn[0] and len(drawn[1]) == 1 and drawn[1][0].startswith("data:image/png")

    press(frequency, "ArrowRight")  # one step: +10 Hz
    equals(title, ["Waveform of a 1010 Hz tone"], what="the title after ArrowRight")
    drawn = both_redrawn(*drawn, "ArrowRight")

    press(frequency, "End")
    equals(title, ["Waveform of a 1500 Hz tone"], what="the title after End")
    drawn = both_redrawn(*drawn, "End")

    drag(chapter.page, frequency, 0.25)  # the mouse: about a quarter of 100..1500 Hz
    dragged_to = float(changed(lambda: readout(frequency), "1500.00", what="the read-out"))
    assert 300 <= dragged_to <= 600, f"the drag moved the slider to {dragged_to} Hz"
    equals(title, [f"Waveform of a {dragged_to:.0f} Hz tone"], what="the title after a drag")
    both_redrawn(*drawn, "a drag")

    shot = chapter.screenshot(screenshots, area, "tone_explorer")
    print(f"chapter 00: ran in {seconds:.1f} s; screenshot {shot}")

    # The settings `make lab` ships: no news or update pop-up appeared during all of this.
    assert chapter.page.locator(".Toastify__toast").all_inner_texts() == []
