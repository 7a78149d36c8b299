"""Chapter 05 in the browser: the fusion playground's accuracy bars follow noise, SNR and drops."""

import re

from lab_driver import (
    drag,
    equals,
    html_text,
    plotly_titles,
    plotly_traces,
    press,
    readout,
    slider,
    steady,
    wait_for,
)

CHAPTER = "05_fusion_strategies.ipynb"
BEST = re.compile(r"best( without [a-z ]+)?: (\w+) at (\d+\.\d)% \(chance is (\d+)%\)")


def test_fusion_playground_follows_its_controls(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=300)  # the playground needs every trained model
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("fusion_playground(trio", plots=1)
    noise, snr = slider(area, "image noise"), slider(area, "audio SNR (dB)")

    def bars():
        """{model: accuracy} as plotly drew the bars, and the percentage printed on each."""
        bar = plotly_traces(area)[0]
        texts = [t.strip() for t in area.locator(".barlayer .bartext").all_text_contents()]
        return dict(zip(bar["x"], bar["y"])), texts

    def consistent(title_suffix: str = ""):
        """The title names the sliders' levels; the read-out names the tallest bar."""
        def check():
            accuracies, texts = bars()
            title = plotly_titles(area)
            wanted = [f"test accuracy: image noise {readout(noise)}, SNR {readout(snr)} dB"
                      f"{title_suffix}"]
            match = BEST.search(" ".join(html_text(area)))
            if title != wanted or not match or not accuracies:
                return None
            best = max(accuracies, key=accuracies.get)
            if texts != [f"{100 * value:.1f}%" for value in accuracies.values()]:
                return None
            return (match.group(2) == best and match.group(3) == f"{100 * accuracies[best]:.1f}"
                    and accuracies)

        return wait_for(check, 10, lambda: f"title {plotly_titles(area)} and read-out "
                        f"{html_text(area)} to match the bars {bars()}")

    shown = steady(bars, what="the accuracy bars after Run All")
    assert set(shown[0]) == {"early", "late", "hybrid"}
    accuracies = consistent()
    assert all(0.0 <= value <= 1.0 for value in accuracies.values())

    start_noise = readout(noise)
    press(noise, "End")  # the noisiest images: the image-heavy models lose accuracy
    equals(lambda: readout(noise) != start_noise, True, what="the noise read-out after End")
    noisy = consistent()
    assert noisy != accuracies, "the bars did not change with the image noise"

    drag(chapter.page, snr, 0.0)  # the mouse: the quietest speech (lowest SNR)
    equals(lambda: readout(snr), "-22.0", what="the SNR read-out after a drag")
    both_bad = consistent()
    assert both_bad != noisy, "the bars did not change with the audio SNR"

    area.locator(".widget-checkbox", has_text="drop image").locator("input").check()
    without_image = consistent(", no image")
    assert without_image != both_bad, "the bars did not change when the image was dropped"
    assert "best without image:" in " ".join(html_text(area))

    area.locator(".widget-checkbox", has_text="drop audio").locator("input").check()
    wait_for(lambda: "Keep at least one modality" in " ".join(html_text(area)), 10,
             "the read-out to refuse dropping both modalities")
    area.locator(".widget-checkbox", has_text="drop image").locator("input").uncheck()
    without_audio = consistent(", no audio")
    assert without_audio != without_image

    press(snr, "ArrowRight")  # without audio, the SNR cannot matter: the bars stay
    equals(lambda: readout(snr), "-16.0", what="the SNR read-out after ArrowRight")
    assert consistent(", no audio") == without_audio

    shot = chapter.screenshot(screenshots, area, "fusion_playground")
    print(f"chapter 05: ran in {seconds:.1f} s; screenshot {shot}")
