"""A plotly figure drawn with matplotlib: the still picture stored behind a live widget.

Without a kernel (GitHub, nbviewer, the course website, Colab before running) a plotly
``FigureWidget`` cannot render, so each widget also carries a PNG of its initial state. Plotly's
own image export needs a browser (kaleido), so this module draws the trace types the course's
widgets use (scatter, bar, heatmap, image), their axes (ranges, log scale, reversed, tick text),
subplot titles, shapes and legends with matplotlib instead. It is a faithful sketch of the
figure, not a pixel copy of plotly's rendering.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, to_rgba
from matplotlib.figure import Figure
from PIL import Image

# Plotly's default colour cycle ("plotly" template) and layout sizes, in pixels.
PLOTLY_COLOURS = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3",
                  "#FF6692", "#B6E880", "#FF97FF", "#FECB52")
DEFAULT_WIDTH, DEFAULT_HEIGHT = 720, 450
DEFAULT_MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}
COLOURMAPS = {"gray": "gray", "greys": "gray_r", "viridis": "viridis", "hot": "hot",
              "magma": "magma", "inferno": "inferno", "plasma": "plasma", "blues": "Blues",
              "reds": "Reds", "rdbu": "RdBu", "cividis": "cividis", "turbo": "turbo"}
_TAG = re.compile(r"<[^>]+>")


def plain_text(text: Any) -> str:
    """Plotly's HTML-ish label text as plain text (``<br>`` becomes a new line)."""
    if text is None:
        return ""
    text = re.sub(r"<br\s*/?>", "\n", str(text), flags=re.IGNORECASE)
    return _TAG.sub("", text).replace("&nbsp;", " ").replace("&amp;", "&")


def _title(value: Any) -> str:
    if isinstance(value, Mapping):
        return plain_text(value.get("text"))
    return plain_text(value)


def _typed(values: Any) -> Any:
    """Plotly's base64 typed-array form (``{"dtype", "bdata", "shape"}``) as a NumPy array."""
    if isinstance(values, Mapping) and "bdata" in values and "dtype" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        shape = values.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array
    return values


def _decoded(spec: Any) -> Any:
    """Every typed array inside a figure dict decoded (recursively)."""
    spec = _typed(spec)
    if isinstance(spec, Mapping):
        return {key: _decoded(value) for key, value in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_decoded(value) for value in spec]
    return spec


def _numbers(values: Any) -> np.ndarray:
    """A plotly coordinate list as floats, with ``None`` as NaN (a gap in a line)."""
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()],
                    dtype=float)


def _is_categorical(values: Any) -> bool:
    return values is not None and any(isinstance(v, str) for v in np.asarray(values, dtype=object)
                                      .ravel())


class _Categories:
    """Positions of categorical tick labels on one axis, in order of first appearance."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def positions(self, values: Sequence[Any]) -> np.ndarray:
        for value in values:
            if str(value) not in self.names:
                self.names.append(str(value))
        return np.array([self.names.index(str(v)) for v in values], dtype=float)


def _axis_layout(layout: Mapping, axis_id: str) -> dict:
    letter, number = axis_id[0], axis_id[1:]
    return dict(layout.get(f"{letter}axis{number}", {}) or {})


def _colour(value: Any, index: int) -> Any:
    if value is None or isinstance(value, (list, tuple, np.ndarray)):
        return PLOTLY_COLOURS[index % len(PLOTLY_COLOURS)]
    return _mpl_colour(value)


def _mpl_colour(value: Any) -> Any:
    """Plotly colour strings (``rgba(192,57,43,0.45)`` too) as matplotlib colours."""
    if isinstance(value, str) and value.startswith("rgb"):
        parts = [float(p) for p in re.findall(r"[\d.]+", value)]
        rgb = [p / 255 for p in parts[:3]]
        return (*rgb, parts[3] if len(parts) > 3 else 1.0)
    return value


def _colourmap(scale: Any) -> Any:
    """A plotly colour scale (a name, or the ``[[position, colour], ...]`` list that plotly
    expands names into) as a matplotlib colour map."""
    if isinstance(scale, str):
        return COLOURMAPS.get(scale.lower(), "viridis")
    if isinstance(scale, (list, tuple)) and scale:
        stops = [(float(position), to_rgba(_mpl_colour(colour))) for position, colour in scale]
        return LinearSegmentedColormap.from_list("plotly", stops)
    return "viridis"


def _draw_scatter(ax: Axes, trace: Mapping, index: int, cats: tuple[_Categories, _Categories]
                  ) -> bool:
    y_values = trace.get("y")
    x_values = trace.get("x")
    if y_values is None:
        return False
    y = cats[1].positions(y_values) if _is_categorical(y_values) else _numbers(y_values)
    if x_values is None:
        x = np.arange(len(y), dtype=float)
    else:
        x = cats[0].positions(x_values) if _is_categorical(x_values) else _numbers(x_values)
    if len(x) == 0 or np.all(np.isnan(y)):
        return False
    mode = trace.get("mode") or ("lines+markers" if len(x) < 20 else "lines")
    line, marker = dict(trace.get("line") or {}), dict(trace.get("marker") or {})
    colour = _colour(line.get("color") or marker.get("color"), index)
    label = trace.get("name") if trace.get("showlegend", True) is not False else None
    opacity = float(trace.get("opacity", 1.0))
    if trace.get("fill") == "toself":
        fill = _mpl_colour(trace.get("fillcolor")) or colour
        ax.fill(x, y, color=fill, linewidth=0, label=label)
        label = None
    if "lines" in mode and float(line.get("width", 2) or 0) > 0:
        dash = {"dash": "--", "dot": ":", "dashdot": "-."}.get(line.get("dash"), "-")
        ax.plot(x, y, color=colour, linewidth=float(line.get("width", 2)) * 0.75, linestyle=dash,
                alpha=opacity, label=label)
        label = None
    if "markers" in mode:
        size = marker.get("size", 6)
        size = float(np.mean(size)) if isinstance(size, (list, tuple)) else float(size)
        colours = marker.get("color")
        if isinstance(colours, (list, tuple)) and len(colours) == len(x):
            ax.scatter(x, y, s=size ** 2, c=colours, cmap=_colourmap(marker.get("colorscale")),
                       alpha=opacity, label=label, zorder=3)
        else:
            ax.scatter(x, y, s=size ** 2, color=colour, alpha=opacity, label=label, zorder=3,
                       marker={"x": "x", "cross": "P", "star": "*", "diamond": "D",
                               "square": "s"}.get(str(marker.get("symbol")), "o"))
    if "text" in mode and trace.get("text") is not None:
        texts = trace["text"]
        texts = [texts] * len(x) if isinstance(texts, str) else list(texts)
        below = "bottom" in str(trace.get("textposition", ""))
        for xi, yi, text in zip(x, y, texts):
            if not (math.isnan(xi) or math.isnan(yi)):
                ax.annotate(plain_text(text), (xi, yi), textcoords="offset points",
                            xytext=(0, -12 if below else 6), ha="center", fontsize=8)
    return True


def _draw_bars(ax: Axes, bars: list[tuple[int, Mapping]], barmode: str,
               cats: tuple[_Categories, _Categories]) -> None:
    count = len(bars)
    width = 0.8 / count if barmode == "group" else 0.8
    bases: dict[tuple[bool, float], float] = {}
    for slot, (index, trace) in enumerate(bars):
        horizontal = trace.get("orientation") == "h"
        along, value = (trace.get("y"), trace.get("x")) if horizontal else (trace.get("x"),
                                                                           trace.get("y"))
        values = _numbers(value)
        cat_axis = cats[1] if horizontal else cats[0]
        if along is None:
            positions = np.arange(len(values), dtype=float)
        elif _is_categorical(along):
            positions = cat_axis.positions(along)
        else:
            positions = _numbers(along)
        offset = (slot - (count - 1) / 2) * width if barmode == "group" else 0.0
        positions = positions + offset
        marker = dict(trace.get("marker") or {})
        colours = marker.get("color")
        colour = ([_mpl_colour(c) for c in colours] if isinstance(colours, (list, tuple))
                  else _colour(colours, index))
        if barmode == "stack":
            base = np.array([bases.get((horizontal, p), 0.0) for p in positions])
            for p, v, b in zip(positions, values, base):
                bases[(horizontal, p)] = b + (0.0 if math.isnan(v) else v)
        else:
            base = np.zeros(len(values))
        label = trace.get("name") if trace.get("showlegend", True) is not False else None
        if horizontal:
            drawn = ax.barh(positions, np.nan_to_num(values), height=width, left=base,
                            color=colour, label=label)
        else:
            drawn = ax.bar(positions, np.nan_to_num(values), width=width, bottom=base,
                           color=colour, label=label)
        texts = trace.get("text")
        if texts is not None and not isinstance(texts, str):
            ax.bar_label(drawn, labels=[plain_text(t) for t in texts], fontsize=8, padding=2)


def _extent(size: int, start: float, step: float) -> tuple[float, float]:
    return start - step / 2, start + (size - 0.5) * step


def _draw_heatmap(ax: Axes, trace: Mapping, cats: tuple[_Categories, _Categories]) -> None:
    z = np.array([[np.nan if v is None else v for v in row] for row in trace["z"]], dtype=float)
    if z.ndim != 2:
        raise ValueError(f"a heatmap's z must be 2-D, got shape {z.shape}")
    rows, columns = z.shape
    ticks: dict[str, list[str]] = {}
    spans = []
    for letter, size, axis_cats in (("x", columns, cats[0]), ("y", rows, cats[1])):
        values = trace.get(letter)
        if values is not None and _is_categorical(values):
            axis_cats.positions(values)
            ticks[letter] = [str(v) for v in values]
            spans.append(_extent(size, 0.0, 1.0))
        elif values is not None and len(values) == size and size > 1:
            numbers = _numbers(values)
            spans.append(_extent(size, numbers[0], (numbers[-1] - numbers[0]) / (size - 1)))
        else:
            spans.append(_extent(size, float(trace.get(f"{letter}0", 0.0)),
                                 float(trace.get(f"d{letter}", 1.0))))
    ax.imshow(z, origin="lower", extent=(*spans[0], *spans[1]), aspect="auto",
              cmap=_colourmap(trace.get("colorscale")), vmin=trace.get("zmin"),
              vmax=trace.get("zmax"), alpha=float(trace.get("opacity", 1.0)),
              interpolation="nearest")
    if "x" in ticks:
        ax.set_xticks(range(columns), ticks["x"])
    if "y" in ticks:
        ax.set_yticks(range(rows), ticks["y"])
    template = trace.get("texttemplate")
    match = re.fullmatch(r"%\{z(?::([^}]*))?\}", template) if isinstance(template, str) else None
    if match and rows * columns <= 400:
        spec = match.group(1) or ""
        x_step = (spans[0][1] - spans[0][0]) / columns
        y_step = (spans[1][1] - spans[1][0]) / rows
        for r in range(rows):
            for c in range(columns):
                ax.text(spans[0][0] + (c + 0.5) * x_step, spans[1][0] + (r + 0.5) * y_step,
                        format(z[r, c], spec), ha="center", va="center", fontsize=8,
                        color="white" if z[r, c] < np.nanmean(z) else "black")


def _draw_image(ax: Axes, trace: Mapping) -> bool:
    if trace.get("source"):
        encoded = str(trace["source"]).split(",", 1)[-1]
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGBA"))
    elif trace.get("z") is not None:
        pixels = np.asarray(trace["z"], dtype=np.uint8)
    else:
        return False
    rows, columns = pixels.shape[:2]
    x_span = _extent(columns, float(trace.get("x0", 0.0)), float(trace.get("dx", 1.0)))
    y_span = _extent(rows, float(trace.get("y0", 0.0)), float(trace.get("dy", 1.0)))
    ax.imshow(pixels, origin="upper", extent=(x_span[0], x_span[1], y_span[1], y_span[0]),
              aspect="auto", interpolation="nearest")
    return True


def _apply_axis(ax: Axes, letter: str, settings: Mapping, image_y: bool) -> None:
    set_label, set_scale = (ax.set_xlabel, ax.set_xscale) if letter == "x" else (ax.set_ylabel,
                                                                                 ax.set_yscale)
    set_lim = ax.set_xlim if letter == "x" else ax.set_ylim
    set_label(_title(settings.get("title")), fontsize=9)
    log = settings.get("type") == "log"
    if log:
        set_scale("log")
    value_range = settings.get("range")
    if value_range is not None and None not in value_range:
        low, high = (10 ** float(v) for v in value_range) if log else map(float, value_range)
        set_lim(low, high)
    elif settings.get("autorange") == "reversed" or (image_y and letter == "y"):
        ax.invert_yaxis() if letter == "y" else ax.invert_xaxis()
    if settings.get("tickvals") is not None:
        labels = settings.get("ticktext") or [str(v) for v in settings["tickvals"]]
        (ax.set_xticks if letter == "x" else ax.set_yticks)(list(settings["tickvals"]),
                                                            [plain_text(t) for t in labels])
    ax.tick_params(labelsize=8)


def _draw_shapes(figure: Figure, axes: Mapping[str, Axes], shapes: Sequence[Mapping]) -> None:
    first = next(iter(axes.values()))
    for shape in shapes:
        ax = axes.get(f"{shape.get('xref', 'x')[:1]}{shape.get('xref', 'x')[1:]}", first)
        line = dict(shape.get("line") or {})
        colour = _mpl_colour(line.get("color", "#444"))
        dash = {"dash": "--", "dot": ":", "dashdot": "-."}.get(line.get("dash"), "-")
        x0, x1 = float(shape.get("x0", 0)), float(shape.get("x1", 0))
        y0, y1 = float(shape.get("y0", 0)), float(shape.get("y1", 0))
        transform = ax.get_xaxis_transform() if shape.get("yref") == "paper" else ax.transData
        if shape.get("type") == "line":
            ax.plot([x0, x1], [y0, y1], color=colour, linestyle=dash,
                    linewidth=float(line.get("width", 2)) * 0.75, transform=transform)
        elif shape.get("type") == "rect":
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, transform=transform,
                                   facecolor=_mpl_colour(shape.get("fillcolor", "none")),
                                   alpha=float(shape.get("opacity", 1.0)), linewidth=0))


def plotly_figure_png(figure: Any, width: int | None = None, height: int | None = None) -> str:
    """A plotly figure (``go.Figure``, ``go.FigureWidget`` or its dict) as a base64 PNG.

    Args:
        figure: the figure; anything with ``to_dict()`` or a ``{"data", "layout"}`` mapping.
        width, height: picture size in pixels (default: the figure's layout, else 720 x 450).

    Returns:
        The PNG, base64-encoded as Jupyter's ``image/png`` display data wants it.
    """
    spec = _decoded(figure.to_dict() if hasattr(figure, "to_dict") else dict(figure))
    if "data" not in spec:
        raise ValueError(f"figure must be a plotly figure or its dict, got keys {sorted(spec)}")
    layout, traces = dict(spec.get("layout") or {}), list(spec.get("data") or [])
    width = int(width or layout.get("width") or DEFAULT_WIDTH)
    height = int(height or layout.get("height") or DEFAULT_HEIGHT)
    margin = {**DEFAULT_MARGIN, **(layout.get("margin") or {})}
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    left, bottom = margin["l"] / width, margin["b"] / height
    plot_w = 1 - (margin["l"] + margin["r"]) / width
    plot_h = 1 - (margin["t"] + margin["b"]) / height

    def paper(x: float, y: float) -> tuple[float, float]:
        return left + x * plot_w, bottom + y * plot_h

    axis_pairs = []
    for trace in traces:
        pair = (trace.get("xaxis") or "x", trace.get("yaxis") or "y")
        if pair not in axis_pairs:
            axis_pairs.append(pair)
    axis_pairs = axis_pairs or [("x", "y")]
    axes: dict[str, Axes] = {}
    for x_id, y_id in axis_pairs:
        x_domain = _axis_layout(layout, x_id).get("domain") or [0, 1]
        y_domain = _axis_layout(layout, y_id).get("domain") or [0, 1]
        (x0, y0), (x1, y1) = paper(x_domain[0], y_domain[0]), paper(x_domain[1], y_domain[1])
        axes[x_id + y_id] = fig.add_axes((x0, y0, max(x1 - x0, 0.01), max(y1 - y0, 0.01)))
    barmode = layout.get("barmode", "group")
    drawn_legend = False
    for x_id, y_id in axis_pairs:
        ax = axes[x_id + y_id]
        cats = (_Categories(), _Categories())
        mine = [(i, t) for i, t in enumerate(traces)
                if (t.get("xaxis") or "x", t.get("yaxis") or "y") == (x_id, y_id)]
        bars = [(i, t) for i, t in mine if t.get("type") == "bar"]
        image_y = False
        for index, trace in mine:
            kind = trace.get("type", "scatter")
            if kind == "scatter":
                _draw_scatter(ax, trace, index, cats)
            elif kind == "heatmap":
                _draw_heatmap(ax, trace, cats)
            elif kind == "image":
                image_y = _draw_image(ax, trace) or image_y
        if bars:
            _draw_bars(ax, bars, barmode, cats)
        for letter, axis_cats in (("x", cats[0]), ("y", cats[1])):
            if axis_cats.names and not any(t.get("type") == "heatmap" for _, t in mine):
                setter = ax.set_xticks if letter == "x" else ax.set_yticks
                setter(range(len(axis_cats.names)), axis_cats.names)
        _apply_axis(ax, "x", _axis_layout(layout, x_id), image_y)
        _apply_axis(ax, "y", _axis_layout(layout, y_id), image_y)
        named = [t for _, t in mine if t.get("name") and t.get("showlegend", True) is not False]
        if layout.get("showlegend", len(named) > 1) and named and not drawn_legend:
            legend = dict(layout.get("legend") or {})
            if legend.get("orientation") == "h":  # a horizontal legend: one row, on top
                ax.legend(fontsize=7, loc="lower center", ncol=len(named), frameon=False,
                          bbox_to_anchor=(0.5, 1.0), borderaxespad=0.2)
            else:
                ax.legend(fontsize=7, loc="best")
            drawn_legend = True
    _draw_shapes(fig, axes, list(layout.get("shapes") or []))
    for note in layout.get("annotations") or []:
        text = plain_text(note.get("text"))
        if note.get("xref", "paper") == "paper" and note.get("yref", "paper") == "paper":
            x, y = paper(float(note.get("x", 0.5)), float(note.get("y", 1.0)))
            fig.text(x, y, text, ha="center", va="bottom", fontsize=9)
        else:
            ax = axes.get(note["xref"] + note.get("yref", "y"), next(iter(axes.values())))
            ax.annotate(text, (float(note.get("x", 0)), float(note.get("y", 0))), fontsize=8,
                        ha="center")
    title = _title(layout.get("title"))
    if title:
        fig.text(0.5, 1 - 0.35 * margin["t"] / height, title, ha="center", va="center",
                 fontsize=11)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").save(buffer, format="png",
                                                                          optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
