"""Chapter 06 in the browser: the gate explorer's curve point, bars and read-out follow alpha."""

import math
import re

from lab_driver import changed, drag, equals, html_text, press, readout, slider, trace_paths

CHAPTER = "06_architectures.ipynb"
READOUT = re.compile(r"alpha = (-?\d+\.\d{2}) → tanh\(alpha\) = (-?\d\.\d{4}): (\d+\.\d{2}) % of "
                     r"the cross-attention update is added( \(with its sign flipped\))?; the "
                     r"token's hidden state moves by (\d+\.\d{3}) of its own length\.")


def test_gate_explorer_follows_alpha(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    # The explorer comes before the chapter's training runs: run down to it only.
    seconds = chapter.run_through("gate_explorer(", timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("gate_explorer(", plots=1)
    alpha = slider(area, "alpha")

    def shown():
        text = " ".join(html_text(area))
        match = READOUT.search(text)
        assert match, f"unexpected gate read-out {text!r}"
        return match.groups()

    def expected_prefix(value: float):
        gate = math.tanh(value)
        return (f"{value:.2f}", f"{gate:.4f}", f"{100 * abs(gate):.2f}",
                " (with its sign flipped)" if gate < 0 else None)

    def plot():  # the gate's point on the tanh curve and the bars of h'
        points = [p.get_attribute("transform") for p in area.locator(
            ".scatterlayer path.point").all()]
        return points, trace_paths(area, ".barlayer .trace path")

    def movement_per_unit_gate():
        # h' - h = tanh(alpha) * update: the hidden state moves in proportion to |tanh(alpha)|.
        groups = shown()
        return float(groups[4]) / abs(float(groups[1]))

    start = float(readout(alpha))
    equals(lambda: shown()[:4], expected_prefix(start), what="the read-out after Run All")
    per_unit, drawn = movement_per_unit_gate(), plot()

    press(alpha, "End")  # alpha = 3: tanh(3) = 0.9951, almost all of the update flows in
    equals(lambda: shown()[:4], expected_prefix(3.0), what="the read-out after End")
    drawn = changed(plot, drawn, what="the gate point and the bars")
    assert abs(movement_per_unit_gate() - per_unit) < 0.01 * per_unit + 0.002

    press(alpha, "Home")  # alpha = -3: the update is subtracted
    equals(lambda: shown()[:4], expected_prefix(-3.0), what="the read-out after Home")
    drawn = changed(plot, drawn, what="the gate point and the bars")

    press(alpha, "ArrowRight")  # one step of 0.05
    equals(lambda: shown()[:4], expected_prefix(-2.95), what="the read-out after ArrowRight")
    drawn = changed(plot, drawn, what="the gate point and the bars")

    drag(chapter.page, alpha, 0.75)  # the mouse: about alpha = 1.5
    dragged = float(changed(lambda: readout(alpha), "-2.95", what="the alpha read-out"))
    assert 1.0 <= dragged <= 2.0, f"the drag moved alpha to {dragged}"
    equals(lambda: shown()[:4], expected_prefix(dragged), what="the read-out after a drag")
    changed(plot, drawn, what="the gate point and the bars")

    shot = chapter.screenshot(screenshots, area, "gate_explorer")
    print(f"chapter 06: ran in {seconds:.1f} s; screenshot {shot}")
