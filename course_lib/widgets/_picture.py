"""The still picture behind every widget, for readers without a kernel.

A stored notebook keeps no widget state, so on GitHub, nbviewer, the course website or in
Colab before running, a widget output can only show its plain-text ``repr``
(``VBox(children=(FloatSlider(...``). :func:`with_picture` makes a widget's display bundle
carry, next to the live widget view, an ``image/png`` of the widget as it first appears: its
controls with their values, its read-outs and its plots. A live front end renders the widget
view (the richest type it knows) and ignores the picture, so the widget appears once.
nbconvert (and so nbviewer) skips a widget view whose state is not stored and shows the
picture; JupyterLab, VS Code and Colab instead print "Error displaying widget: model not
found". So the notebook tools also drop the widget view from *stored* outputs (it names a
model that is not stored, so it can never render), which leaves the picture for every viewer.
"""

from __future__ import annotations

import base64
import functools
import html as html_lib
import io
import re
from collections.abc import Callable
from typing import Any, TypeVar

import ipywidgets
import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from course_lib.widgets._plotly_picture import plotly_figure_png

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_JSON = "application/vnd.plotly.v1+json"
BACKGROUND = (255, 255, 255)
GAP = 6
_FONT_PATH = font_manager.findfont("DejaVu Sans")
_F = TypeVar("_F", bound=Callable[..., Any])
# The names of the widget factories whose widgets carry a picture (filled by ``pictured``).
PICTURED_FACTORIES: set[str] = {"live_figure"}


def _font(size: int = 13) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_FONT_PATH, size)


def _html_text(markup: str) -> str:
    # a token chip (text, line break, small id) reads "text id", chips separated by bars
    markup = re.sub(r"<br\s*/?>\s*<small>", " ", markup, flags=re.IGNORECASE)
    markup = re.sub(r"</small>\s*</span>", " | ", markup, flags=re.IGNORECASE)
    text = re.sub(r"<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", markup, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [" ".join(line.split()) for line in html_lib.unescape(text).splitlines()]
    return "\n".join(line for line in lines if line)


def _text_image(text: str, size: int = 13, width: int | None = None) -> Image.Image | None:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    font = _font(size)
    if width is not None:  # wrap long read-out lines at the picture's width
        wrapped = []
        for line in lines:
            words, current = line.split(" "), ""
            for word in words:
                trial = f"{current} {word}".strip()
                if current and font.getlength(trial) > width - 2 * GAP:
                    wrapped.append(current)
                    current = word
                else:
                    current = trial
            wrapped.append(current)
        lines = wrapped
    line_height = size + 5
    text_width = int(max(font.getlength(line) for line in lines)) + 2 * GAP
    image = Image.new("RGB", (max(text_width, width or 0), line_height * len(lines) + GAP),
                      BACKGROUND)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((GAP, GAP // 2 + row * line_height), line, fill=(20, 20, 20), font=font)
    return image


def _png_image(encoded: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")


def _control_text(control: ipywidgets.Widget) -> str:
    description = getattr(control, "description", "") or ""
    if isinstance(control, ipywidgets.Checkbox):
        return f"[{'x' if control.value else ' '}] {description}"
    if isinstance(control, ipywidgets.Button):
        return f"[ {description} ]"
    value = control.value
    labels = getattr(control, "_options_labels", None)
    index = getattr(control, "index", None)
    if labels is not None and isinstance(index, int):  # a selection: show its label
        if isinstance(control, ipywidgets.ToggleButtons):
            value = "  ".join(f"[{o}]" if i == index else o for i, o in enumerate(labels))
        else:
            value = labels[index]
    elif isinstance(value, float):
        value = f"{value:g}"
    elif isinstance(value, (tuple, list)):
        value = ", ".join(str(v) for v in value)
    return f"{description}: {value}" if description else str(value)


def _output_images(output: ipywidgets.Output) -> list[Image.Image]:
    images = []
    for item in output.outputs:
        data = item.get("data", {})
        if "image/png" in data:
            images.append(_png_image(data["image/png"]))
        elif PLOTLY_JSON in data:
            images.append(_png_image(plotly_figure_png(data[PLOTLY_JSON])))
        else:
            text = item.get("text") or data.get("text/plain") or ""
            image = _text_image("".join(text))
            if image is not None:
                images.append(image)
    return images


def _parts(widget: Any, width: int) -> list[Image.Image]:
    """The pictures of one widget and its children, top to bottom."""
    if hasattr(widget, "to_dict") and hasattr(widget, "data") and hasattr(widget, "layout"):
        return [_png_image(plotly_figure_png(widget))]  # a plotly figure or FigureWidget
    if isinstance(widget, ipywidgets.Output):
        return _output_images(widget)
    if isinstance(widget, ipywidgets.Image):
        return [Image.open(io.BytesIO(widget.value)).convert("RGB")] if widget.value else []
    if isinstance(widget, (ipywidgets.HTML, ipywidgets.HTMLMath, ipywidgets.Label)):
        image = _text_image(_html_text(str(widget.value)), width=width)
        return [image] if image is not None else []
    if isinstance(widget, ipywidgets.HBox):
        columns = [_stacked(_parts(child, width)) for child in widget.children]
        return _rows([column for column in columns if column is not None], width)
    if isinstance(widget, ipywidgets.Box):
        parts, controls = [], []
        for child in widget.children:
            if _is_control(child):  # consecutive controls share lines, as a form would
                controls.append(_control_text(child))
                continue
            parts.extend(_controls_block(controls, width))
            controls = []
            parts.extend(_parts(child, width))
        return parts + _controls_block(controls, width)
    if isinstance(widget, (ipywidgets.ValueWidget, ipywidgets.Button)):
        image = _text_image(_control_text(widget))
        return [image] if image is not None else []
    return []


def _is_control(widget: Any) -> bool:
    return (isinstance(widget, (ipywidgets.ValueWidget, ipywidgets.Button)) and not isinstance(
        widget, (ipywidgets.HTML, ipywidgets.HTMLMath, ipywidgets.Label, ipywidgets.Output)))


def _controls_block(texts: list[str], width: int) -> list[Image.Image]:
    """Control read-outs ("patch: 16") packed onto as few lines as fit in ``width``."""
    if not texts:
        return []
    font, lines = _font(13), [""]
    for text in texts:
        trial = f"{lines[-1]}    {text}" if lines[-1] else text
        if lines[-1] and font.getlength(trial) > width - 2 * GAP:
            lines.append(text)
        else:
            lines[-1] = trial
    image = _text_image("\n".join(lines))
    return [image] if image is not None else []


def _stacked(parts: list[Image.Image]) -> Image.Image | None:
    """Pictures one above the other (None when there are none)."""
    if not parts:
        return None
    picture = Image.new("RGB", (max(p.width for p in parts),
                                sum(p.height for p in parts) + GAP * (len(parts) - 1)),
                        BACKGROUND)
    y = 0
    for part in parts:
        picture.paste(part, (0, y))
        y += part.height + GAP
    return picture


def _rows(columns: list[Image.Image], width: int) -> list[Image.Image]:
    """Side-by-side pictures, wrapped onto a new row where they would pass ``width``."""
    rows: list[list[Image.Image]] = []
    for column in columns:
        if rows and sum(c.width + GAP for c in rows[-1]) + column.width <= width:
            rows[-1].append(column)
        else:
            rows.append([column])
    return [_side_by_side(row) for row in rows]


def _side_by_side(images: list[Image.Image]) -> Image.Image:
    height = max(image.height for image in images)
    canvas = Image.new("RGB", (sum(i.width for i in images) + GAP * (len(images) - 1), height),
                       BACKGROUND)
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width + GAP
    return canvas


def widget_picture_png(widget: Any, width: int = 720) -> str:
    """A picture of ``widget`` in its current state, as base64 PNG.

    Controls become "description: value" lines, HTML read-outs their text, plotly figures
    and the images inside ``Output`` widgets their pictures, stacked as the widget lays them out.

    Args:
        widget: an ipywidgets widget tree or a plotly figure.
        width: the width (pixels) at which long read-out lines wrap.
    """
    picture = _stacked(_parts(widget, width))
    if picture is None:
        raise ValueError(f"widget has nothing to picture (got {type(widget).__name__})")
    buffer = io.BytesIO()
    picture.save(buffer, format="png", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def with_picture(widget: Any, name: str | None = None) -> Any:
    """Make ``widget``'s display bundle also carry a picture of its state when shown.

    The bundle keeps the live view (what JupyterLab, Notebook and Colab render while the
    kernel runs) and gains ``image/png`` and a one-line ``text/plain``. Returns ``widget``.
    """
    original = widget._repr_mimebundle_
    label = name or type(widget).__name__

    def _repr_mimebundle_(**kwargs: Any) -> Any:
        bundle = original(**kwargs)
        data, metadata = (bundle if isinstance(bundle, tuple) else (bundle, {}))
        data = {key: value for key, value in (data or {}).items()
                if key in (WIDGET_VIEW, "text/plain")}
        try:
            data["image/png"] = widget_picture_png(widget)
        except Exception as error:  # a picture must never stop the live widget from showing
            data["text/plain"] = f"{label} (no picture: {type(error).__name__}: {error})"
            return data, metadata or {}
        data["text/plain"] = f"{label}: an interactive widget; run the cell to use it"
        return data, metadata or {}

    widget._repr_mimebundle_ = _repr_mimebundle_
    return widget


def pictured(function: _F) -> _F:
    """Decorator for a widget factory: the widget it returns carries its picture."""

    PICTURED_FACTORIES.add(function.__name__)

    @functools.wraps(function)
    def build(*args: Any, **kwargs: Any) -> Any:
        return with_picture(function(*args, **kwargs), name=function.__name__.replace("_", " "))

    return build  # type: ignore[return-value]


def picture_array(encoded_png: str) -> np.ndarray:
    """A base64 PNG as an (H, W, 3) uint8 array (for tests and checks)."""
    return np.asarray(_png_image(encoded_png))
