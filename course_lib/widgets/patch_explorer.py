"""Patch explorer: drag the patch size over a real image and watch the token count change.

The slider offers every size from 4 to 64 pixels, not only the divisors of the image size:
for a size that does not divide it, the strip that whole patches cannot cover is shaded red,
which shows why a ViT needs image_size % patch_size == 0 (it resizes or crops the image
first). The numbers come from :func:`course_lib.vision.patch_grid`; this module only draws.
"""

from __future__ import annotations

import ipywidgets
import plotly.graph_objects as go
import torch

from course_lib._validation import check_int
from course_lib.vision import patch_grid, patch_grid_lines
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._checks import check_grey_image
from course_lib.widgets._picture import pictured


def _remainder_polygon(image_size: int, covered: int) -> tuple[list, list]:
    """An L-shaped strip (two rectangles, ``None`` between) outside the covered square."""
    if covered == image_size:
        return [], []
    right = [covered, image_size, image_size, covered, covered]
    bottom = [0, covered, covered, 0, 0]
    return (right + [None] + bottom,
            [0, 0, image_size, image_size, 0] + [None] + [covered, covered, image_size,
                                                           image_size, covered])


def _readout_html(image_size: int, patch_size: int) -> str:
    grid = patch_grid(image_size, patch_size)
    per_side, count = grid["patches_per_side"], grid["num_patches"]
    text = (f"patch {patch_size} px: {image_size} // {patch_size} = {per_side} per side &rarr; "
            f"<b>{count} patch tokens</b> (+ CLS = {count + 1}); each patch holds "
            f"{grid['values_per_patch']} values per channel")
    if grid["remainder"]:
        text += (f"<br><span style='color:#c0392b'>{image_size} = {per_side} &times; "
                 f"{patch_size} + {grid['remainder']}: the last {grid['remainder']} px of each "
                 "side are not covered (a ViT would resize or crop the image)</span>")
    return text


@pictured
def patch_explorer(image: torch.Tensor | None = None, patch_size: int = 16) -> ipywidgets.VBox:
    """A patch-size slider over a square grey image with the patch grid drawn on top.

    Args:
        image: (1, S, S) or (S, S) values in [0, 1]; default: the course's 224x224 MRI slice.
        patch_size: the slider's starting value.

    Returns:
        The root widget; ``.slider``, ``.readout`` and ``.figure`` are attached.
    """
    if image is None:
        from course_lib.data import load_mri_slice

        image = load_mri_slice(224)
    pixels = check_grey_image("image", image)
    if pixels.shape[0] != pixels.shape[1] or pixels.shape[0] < 4:
        raise ValueError(f"image must be square, (1, S, S) or (S, S) with S >= 4, got "
                         f"{tuple(pixels.shape)}")
    size = pixels.shape[0]
    patch_size = check_int("patch_size", patch_size, minimum=4, maximum=min(64, size))
    slider = ipywidgets.IntSlider(value=patch_size, min=4, max=min(64, size), step=1,
                                  description="patch (px)", continuous_update=True)
    readout = ipywidgets.HTML()
    figure = go.Figure([
        go.Heatmap(z=pixels.numpy().round(3), colorscale="gray", showscale=False,
                   hoverinfo="skip"),
        go.Scatter(x=[], y=[], mode="lines", line={"color": "#f1c40f", "width": 1},
                   hoverinfo="skip", name="patch grid"),
        go.Scatter(x=[], y=[], mode="lines", fill="toself", fillcolor="rgba(192,57,43,0.45)",
                   line={"width": 0}, hoverinfo="skip", name="not covered"),
    ])
    figure.update_layout(width=460, height=480, showlegend=False,
                         margin={"t": 50, "b": 50, "l": 50, "r": 10})
    figure.update_xaxes(title_text="x (pixels)", range=[-0.5, size - 0.5], constrain="domain")
    figure.update_yaxes(title_text="y (pixels)", range=[size - 0.5, -0.5], scaleanchor="x")
    view = live_figure(figure)

    def update(_change=None) -> None:
        patch = int(slider.value)
        grid = patch_grid(size, patch)
        xs, ys = patch_grid_lines(size, patch)
        covered = grid["patches_per_side"] * patch
        strip_x, strip_y = _remainder_polygon(size, covered)
        with view.batch_update():
            # Lines sit on pixel edges: pixel i spans [i - 0.5, i + 0.5] in a heatmap.
            view.data[1].x = [v - 0.5 if v is not None else None for v in xs]
            view.data[1].y = [v - 0.5 if v is not None else None for v in ys]
            view.data[2].x = [v - 0.5 if v is not None else None for v in strip_x]
            view.data[2].y = [v - 0.5 if v is not None else None for v in strip_y]
            view.layout.title = {"text": f"{size}x{size} image, {patch}x{patch} patches: "
                                         f"{grid['num_patches']} tokens", "font": {"size": 14}}
        readout.value = _readout_html(size, patch)

    slider.observe(update, names="value")
    update()
    children = [slider, readout]
    children.append(as_widget(view))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    root.slider, root.readout, root.figure = slider, readout, view
    return root


BENCHMARK = patch_explorer
