"""Chapter 04b in the browser: the shared space before and after training, a live plotly figure
with one point per shown test item, a hover text for each, and the two modalities moved together.
"""

import math
import re

from lab_driver import plotly_titles, plotly_traces, top_level_outputs, wait_for

CHAPTER = "04b_training_a_mini_clip.ipynb"
FIGURE_CELL = "live_figure(figure)"
TITLE = "Shared space of the test items (colour = digit)"
ITEMS = 100  # 10 images and their 10 clips of each digit, in each panel
HOVER = re.compile(r"^(image of a \d \('.+'\)|spoken '[a-z]+' \(.+\))$")


def centroid_gap(images: dict, clips: dict) -> float:
    """Distance between the mean image point and the mean clip point of one panel."""
    def mean(values):
        return sum(values) / len(values)

    return math.dist((mean(images["x"]), mean(images["y"])), (mean(clips["x"]), mean(clips["y"])))


def figure_output(chapter, code: str):
    """The output area of the code cell containing ``code``, once its plotly figure has drawn.

    The figure is a bare ``FigureWidget`` (an anywidget view, not an ipywidgets box), so this
    waits for the plot itself rather than for a ``.jupyter-widgets`` element."""
    cell = chapter.page.locator(".jp-Notebook .jp-Cell").nth(chapter.cell_index(code))
    output = cell.locator(".jp-Cell-outputArea")
    output.scroll_into_view_if_needed()
    wait_for(lambda: output.locator(".js-plotly-plot:has(.main-svg)").count() >= 1, 60,
             f"the plotly figure under the cell containing {code!r}")
    kinds = top_level_outputs(output)
    # A live front end shows the widget (its still picture, stored for viewers without a
    # kernel, is not shown) and no static-figure fallback.
    assert kinds == ["widget"], f"the cell containing {code!r} shows {kinds}"
    return output


def test_shared_space_before_and_after_training(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=600)  # five mini-CLIPs train on the way to the figure
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = figure_output(chapter, FIGURE_CELL)
    assert plotly_titles(area) == [TITLE]
    panels = [text.strip() for text in area.locator(".annotation-text").all_text_contents()]
    assert panels == ["before training", "after training"], panels
    traces = plotly_traces(area)
    assert [trace["name"] for trace in traces] == ["images", "clips", "images", "clips"]
    assert all(len(trace["x"]) == len(trace["y"]) == ITEMS for trace in traces)
    assert all(math.isfinite(v) for trace in traces for v in trace["x"] + trace["y"])
    # Training pulls the two clouds together: in the plane of the first two principal
    # components the image and clip centroids come much closer (in 32 dimensions the chapter
    # measures the gap shrinking from about 1.3 to about 0.3).
    before, after = centroid_gap(traces[0], traces[1]), centroid_gap(traces[2], traces[3])
    assert after < before / 2, (before, after)

    # Hovering a point of the "after" panel names the item it stands for.
    area.locator(".js-plotly-plot").first.evaluate(
        "plot => plot.scrollIntoView({block: 'center'})")
    point = area.locator(".scatterlayer .trace").nth(2).locator("path.point").first
    box = point.bounding_box()
    assert box, "the first image point of the 'after' panel is not drawn"
    chapter.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    hover = wait_for(lambda: [t.strip() for t in
                              area.locator(".hoverlayer .hovertext").all_text_contents()], 10,
                     "a hover label on the shared-space figure")
    assert HOVER.match(hover[0]), hover

    shot = chapter.screenshot(screenshots, area, "shared_space")
    print(f"chapter 04b: ran in {seconds:.1f} s; gap in the plane {before:.2f} -> {after:.2f}; "
          f"screenshot {shot}")
