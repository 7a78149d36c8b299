"""Chapter 03a in the browser: the attention explorer (three sliders, one title)."""

import math

import torch
from lab_driver import (
    changed,
    drag,
    equals,
    plotly_titles,
    press,
    readout,
    slider,
    trace_paths,
)

CHAPTER = "03a_attention.ipynb"
# The chapter's worked example: three 2-D keys and their values.
KEYS = torch.tensor(((1.0, 1.0), (0.0, 1.0), (1.0, 0.0)))
VALUES = torch.tensor(((0.5, 0.3), (0.1, 0.8), (0.9, 0.2)))


def expected_explorer_title(angle_deg: float, length: float, temperature: float) -> str:
    """The explorer's title, computed here with plain torch ops (softmax over scaled scores)."""
    angle = math.radians(angle_deg)
    query = torch.tensor([math.cos(angle), math.sin(angle)]) * length
    scale = 1.0 / (temperature * math.sqrt(2))
    weights = torch.softmax(KEYS @ query * scale, dim=0)
    entropy_bits = float(-(weights * torch.log2(weights)).sum())
    output = weights @ VALUES
    return (f"scale = {scale:.3f}, entropy = {entropy_bits:.2f} bits (max {math.log2(3):.2f}), "
            f"output = [{output[0]:.3f}, {output[1]:.3f}]")


def test_attention_explorer_follows_its_controls(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    # -- the attention explorer: three sliders, one title computed from all three ---------------
    area = chapter.output_of("attention_explorer()", plots=1)
    angle = slider(area, "query angle (°)")
    length = slider(area, "query length")
    temperature = slider(area, "temperature")

    def title():
        return plotly_titles(area)

    def expect(what):
        # The temperature is only ever at an exactly known value (End, then not moved) when
        # this runs; the angle and length read-outs are exact to their 0.1 / 5 degree steps.
        wanted = expected_explorer_title(float(readout(angle)), float(readout(length)), 10.0)
        return equals(title, [wanted], what=f"the explorer's title after {what}")

    before = (title(), trace_paths(area))
    press(temperature, "End")  # 10 ** 1: the flattest softmax
    equals(lambda: readout(temperature), "10.0", what="the temperature read-out")
    expect("temperature End")

    paths, angle_before = trace_paths(area), float(readout(angle))
    press(angle, "ArrowLeft")  # -5 degrees turns the query
    equals(lambda: float(readout(angle)), angle_before - 5, what="the angle read-out")
    expect("angle ArrowLeft")
    assert changed(lambda: trace_paths(area), paths, what="the query arrow") != paths

    press(length, "Home")  # a zero query: every key scores 0, the weights are uniform
    equals(lambda: readout(length), "0.00", what="the length read-out")
    expect("length Home")
    assert "entropy = 1.58 bits (max 1.58), output = [0.500, 0.433]" in title()[0]

    drag(chapter.page, length, 0.5)  # the mouse: about half of 0..4
    dragged = float(changed(lambda: readout(length), "0.00", what="the length read-out"))
    assert 1.5 <= dragged <= 2.5, f"the drag moved the length to {dragged}"
    expect("dragging the length slider")
    assert title() != before[0] and trace_paths(area) != before[1]
    shot = chapter.screenshot(screenshots, area, "attention_explorer")
    print(f"chapter 03a: ran in {seconds:.1f} s; screenshot {shot}")
