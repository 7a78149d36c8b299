"""Chapter 06 in the browser: the gate explorer closes and reopens the trained Flamingo's gates.

The read-out, the accuracy curve's marker and the answer bars follow the alpha-scale slider;
each gate's alpha is the slider's value times its trained alpha, and its tanh matches.
"""

import math
import re

from lab_driver import changed, drag, equals, html_text, plotly_traces, press, readout, slider

CHAPTER = "06_architectures.ipynb"
READOUT = re.compile(r"alpha scale = (\d\.\d{2}) \(([^;]+); (.+?)\): held-out accuracy "
                     r"(\d\.\d{3}); the example \(answer '(\w+)'\) gets p = (\d\.\d{3}) for "
                     r"'(\w+)'\.")
GATE = re.compile(r"gate (\d): alpha ([+-]\d\.\d{3}), tanh ([+-]\d\.\d{3})")


def test_gate_explorer_reopens_the_trained_gates(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    # The explorer needs the chapter's trainings (section 5); the cells after it are skipped.
    seconds = chapter.run_through("gate_explorer(", timeout_s=480)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("gate_explorer(", plots=1)
    scale = slider(area, "alpha scale")

    def shown():
        text = " ".join(html_text(area))
        match = READOUT.search(text)
        assert match, f"unexpected gate read-out {text!r}"
        gates = [(float(a), float(t)) for _, a, t in GATE.findall(match.group(3))]
        return float(match.group(1)), match.group(2), gates, float(match.group(4))

    def plotted():  # the accuracy marker (x, y) and the answer bars
        traces = plotly_traces(area)
        return traces[1]["x"] + traces[1]["y"], traces[2]["y"]

    equals(lambda: shown()[0], 0.0, what="the alpha scale after Run All")
    value, state, gates, accuracy_closed = shown()
    assert "frozen language model alone" in state
    assert gates and all(alpha == 0 and tanh == 0 for alpha, tanh in gates)
    drawn = plotted()
    assert abs(drawn[0][1] - accuracy_closed) < 5e-4  # the marker shows the read-out's number

    press(scale, "End")  # scale 1: the trained gates
    equals(lambda: shown()[0], 1.0, what="the alpha scale after End")
    _, state, trained, accuracy_open = shown()
    assert "the trained gates" in state
    assert all(abs(math.tanh(alpha) - tanh) < 2e-3 for alpha, tanh in trained)
    assert any(alpha != 0 for alpha, _ in trained)
    assert accuracy_open > accuracy_closed + 0.3  # vision flows in: far above the LM alone
    drawn = changed(plotted, drawn, what="the accuracy marker and the answer bars")
    assert abs(drawn[0][1] - accuracy_open) < 5e-4

    press(scale, "Home")
    equals(lambda: shown()[0], 0.0, what="the alpha scale after Home")
    drawn = changed(plotted, drawn, what="the accuracy marker and the answer bars")
    press(scale, "ArrowRight")  # one step of 0.05
    equals(lambda: shown()[0], 0.05, what="the alpha scale after ArrowRight")
    drawn = changed(plotted, drawn, what="the accuracy marker and the answer bars")

    drag(chapter.page, scale, 0.5)  # the mouse: about half of every trained alpha
    dragged = float(changed(lambda: readout(scale), "0.05", what="the alpha-scale read-out"))
    assert 0.3 <= dragged <= 0.7, f"the drag moved the scale to {dragged}"
    equals(lambda: shown()[0], dragged, what="the read-out after a drag")
    _, _, gates, _ = shown()
    for (alpha, tanh), (alpha_trained, _) in zip(gates, trained, strict=True):
        assert abs(alpha - dragged * alpha_trained) < 2e-3  # every alpha scaled alike
        assert abs(math.tanh(alpha) - tanh) < 2e-3
    changed(plotted, drawn, what="the accuracy marker and the answer bars")

    shot = chapter.screenshot(screenshots, area, "gate_explorer")
    print(f"chapter 06: ran in {seconds:.1f} s; screenshot {shot}")
