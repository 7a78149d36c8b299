"""The course's diagrams, drawn by code so that they are tested and restyle together.

Each function returns a :class:`Diagram`, a ``matplotlib.figure.Figure`` (no pyplot state):
labelled boxes joined by arrows. :func:`box_labels` lists the labels of a drawn diagram (what
the tests check). A diagram shows itself as a PNG when it is the value of a notebook cell,
even before pyplot has drawn anything in the kernel (matplotlib resolves its inline backend
lazily, so a bare ``Figure`` returned by a chapter's first plotting cell would otherwise be
stored as the text ``<Figure size ...>``).

- :func:`pipeline_diagram`: encoders -> projection -> joint model (chapter 00);
- :func:`vit_diagram`: an image to patches, a CLS token and one vector (chapter 02);
- :func:`audio_frontend_diagram`: waveform -> frames -> log-mel -> strided convolutions (ch. 02);
- :func:`qkv_diagram`: queries from text, keys and values from image patches (chapter 03);
- :func:`clip_matrix_diagram`: the N x N similarity matrix of CLIP, diagonal marked (ch. 04).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from course_lib._validation import (
    ArgumentTypeError,
    check_allocation,
    check_int,
    check_number,
    check_sequence,
    check_text,
    describe,
)

MAX_BOXES = 200  # boxes (or arrows) in one diagram

COLOURS = {"image": "#fde0c5", "text": "#d5e8d4", "audio": "#dae8fc", "shared": "#e1d5e7",
           "plain": "#f5f5f5"}
BOX_GID = "diagram-box"


class Diagram(Figure):
    """A ``Figure`` that renders itself as PNG for IPython (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()


def flow_diagram(boxes: Sequence[tuple[str, tuple[float, float], str]],
                 arrows: Sequence[tuple[int, int]], title: str,
                 size: tuple[float, float] = (10.0, 4.0), box_width: float = 0.17,
                 box_height: float = 0.16) -> Figure:
    """Labelled boxes at (x, y) in [0, 1]^2, arrows between them by index.

    Args:
        boxes: (label, (x, y) centre, colour key of :data:`COLOURS`) per box.
        arrows: (from, to) indices into ``boxes``.

    Raises:
        ValueError / TypeError: naming the argument: ``boxes`` empty or not (label, (x, y),
            colour) triples with a known colour and a centre in [0, 1]^2; ``arrows`` not pairs
            of box indices; ``title`` not a string; ``size`` not two positive inches (at most
            50); a box width or height outside (0, 1].
    """
    boxes = check_sequence("boxes", boxes, of="(label, (x, y), colour) boxes")
    if not boxes:
        raise ValueError("boxes must hold at least one box")
    arrows = check_sequence("arrows", arrows, of="(from, to) index pairs")
    for name, items in (("boxes", boxes), ("arrows", arrows)):
        check_allocation(name, len(items), MAX_BOXES, "items")
    for index, box in enumerate(boxes):
        _check_box(index, box)
    for index, arrow in enumerate(arrows):
        if isinstance(arrow, (str, bytes)) or not isinstance(arrow, Sequence) or len(arrow) != 2:
            raise ArgumentTypeError(f"arrows[{index}] must be a (from, to) pair of box indices, "
                                    f"got {describe(arrow)}")
        start, end = (check_int(f"arrows[{index}]", i) for i in arrow)
        if not (0 <= start < len(boxes) and 0 <= end < len(boxes)):
            raise ValueError(f"arrows[{index}] = ({start}, {end}) points outside the "
                             f"{len(boxes)} boxes")
    title = check_text("title", title)
    if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
        raise ArgumentTypeError(f"size must be (width, height) in inches, got {describe(size)}")
    size = tuple(check_number("size", side, above=0, maximum=50) for side in size)
    box_width = check_number("box_width", box_width, above=0, maximum=1)
    box_height = check_number("box_height", box_height, above=0, maximum=1)
    fig = Diagram(figsize=size)
    ax = fig.add_axes((0, 0, 1, 0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    for label, (x, y), colour in boxes:
        patch = FancyBboxPatch((x - box_width / 2, y - box_height / 2), box_width, box_height,
                               boxstyle="round,pad=0.01", facecolor=COLOURS[colour],
                               edgecolor="#444444", linewidth=1.0)
        patch.set_gid(BOX_GID)
        ax.add_patch(patch)
        text = ax.text(x, y, label, ha="center", va="center", fontsize=9, wrap=True)
        text.set_gid(BOX_GID)
    for start, end in arrows:
        (x0, y0), (x1, y1) = boxes[start][1], boxes[end][1]
        ax.add_patch(FancyArrowPatch(_edge((x0, y0), (x1, y1), box_width, box_height),
                                     _edge((x1, y1), (x0, y0), box_width, box_height),
                                     arrowstyle="-|>", mutation_scale=12, color="#444444"))
    fig.suptitle(title, fontsize=11)
    return fig


def _check_box(index: int, box: object) -> None:
    name = f"boxes[{index}]"
    if isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 3:
        raise ArgumentTypeError(f"{name} must be a (label, (x, y), colour) triple, got "
                                f"{describe(box)}")
    label, centre, colour = box
    check_text(f"{name}'s label", label)
    if isinstance(centre, (str, bytes)) or not isinstance(centre, Sequence) or len(centre) != 2:
        raise ArgumentTypeError(f"{name}'s centre must be (x, y) in [0, 1]^2, got "
                                f"{describe(centre)}")
    for coordinate in centre:
        check_number(f"{name}'s centre", coordinate, minimum=0, maximum=1)
    if not isinstance(colour, str) or colour not in COLOURS:
        raise ValueError(f"{name} ({label!r}) has colour {colour!r}; expected one of "
                         f"{sorted(COLOURS)}")


def _edge(centre: tuple[float, float], towards: tuple[float, float], width: float,
          height: float) -> tuple[float, float]:
    """Where the line from ``centre`` to ``towards`` leaves the box around ``centre``."""
    (x, y), (tx, ty) = centre, towards
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min(width / 2 / abs(dx) if dx else float("inf"),
                height / 2 / abs(dy) if dy else float("inf"))
    return x + dx * scale * 1.05, y + dy * scale * 1.05


def box_labels(fig: Figure) -> list[str]:
    """The labels of the boxes of a diagram, in drawing order."""
    if not isinstance(fig, Figure):
        raise ArgumentTypeError(f"fig must be a matplotlib Figure (from one of the diagram "
                                f"functions), got {describe(fig)}")
    return [text.get_text() for ax in fig.axes for text in ax.texts if text.get_gid() == BOX_GID]


def pipeline_diagram() -> Figure:
    """The whole pipeline: one encoder per modality, a projection each, one joint model."""
    rows = (("image", "image\n224 x 224 x 3", "vision encoder\n(ViT)"),
            ("text", "text\ntoken ids", "embedding\n(after BPE)"),
            ("audio", "audio\n16,000 samples / s", "audio encoder\n(log-mel + convs)"))
    boxes, arrows = [], []
    for row, (colour, source, encoder) in enumerate(rows):
        y = 0.8 - 0.3 * row
        base = len(boxes)
        boxes += [(source, (0.08, y), colour), (encoder, (0.28, y), colour),
                  ("projection\nto width d", (0.48, y), "shared")]
        arrows += [(base, base + 1), (base + 1, base + 2)]
    boxes += [("joint model\n(transformer over\nall tokens)", (0.70, 0.5), "shared"),
              ("answer", (0.90, 0.5), "plain")]
    arrows += [(2, 9), (5, 9), (8, 9), (9, 10)]
    return flow_diagram(boxes, arrows, "Specialised encoders -> projection to one width -> "
                        "joint model", size=(11, 4.2), box_width=0.14, box_height=0.18)


def vit_diagram() -> Figure:
    """A Vision Transformer: image -> 16 x 16 patches -> patch tokens + CLS -> blocks -> CLS."""
    labels = ("image\n224 x 224", "196 patches\n16 x 16 px",
              "patch embedding\n(linear) -> 196", "+ CLS token,\n+ positions: 197",
              "transformer\nblocks", "CLS vector\n(one per image)")
    boxes = [(label, (0.09 + 0.164 * k, 0.5), "image") for k, label in enumerate(labels)]
    return flow_diagram(boxes, [(k, k + 1) for k in range(len(boxes) - 1)],
                        "ViT: patches become tokens; the CLS token summarises them",
                        size=(11, 2.4), box_width=0.125, box_height=0.5)


def audio_frontend_diagram() -> Figure:
    """The audio front-end: waveform -> frames -> log-mel -> three stride-2 convolutions."""
    labels = ("waveform\n16,000 samples", "frames\nwindow 400, hop 160\n-> 101",
              "log-mel\n128 bands x 101", "3 stride-2 convs\n101 -> 51 -> 26 -> 13",
              "transformer\n13 tokens x 192")
    boxes = [(label, (0.1 + 0.2 * k, 0.5), "audio") for k, label in enumerate(labels)]
    return flow_diagram(boxes, [(k, k + 1) for k in range(len(boxes) - 1)],
                        "Audio front-end: 1 s of speech -> 13 audio tokens",
                        size=(11, 2.4), box_width=0.15, box_height=0.5)


def qkv_diagram() -> Figure:
    """Cross-attention: queries from text tokens, keys and values from image patches."""
    boxes = [("text tokens\n(N, d)", (0.12, 0.8), "text"),
             ("image patches\n(M, d_kv)", (0.12, 0.25), "image"),
             ("Q = text W_q\n(N, d)", (0.37, 0.8), "text"),
             ("K = patches W_k\n(M, d)", (0.37, 0.45), "image"),
             ("V = patches W_v\n(M, d)", (0.37, 0.13), "image"),
             ("weights = softmax(\nQ K^T / sqrt(d))\n(N, M)", (0.64, 0.62), "shared"),
             ("output =\nweights V\n(N, d)", (0.88, 0.36), "shared")]
    arrows = [(0, 2), (1, 3), (1, 4), (2, 5), (3, 5), (5, 6), (4, 6)]
    return flow_diagram(boxes, arrows, "Cross-attention: text asks (Q), image patches answer "
                        "(K, V)", size=(10, 4.2), box_width=0.19, box_height=0.2)


def clip_matrix_diagram(n: int = 4) -> Figure:
    """The N x N similarity matrix of a CLIP batch, the matching pairs on the diagonal.

    Raises:
        ValueError: if ``n`` is not an integer from 2 to 12.
    """
    n = check_int("n", n, minimum=2, maximum=12)
    fig = Diagram(figsize=(4.8, 4.6))
    ax = fig.add_axes((0.2, 0.05, 0.75, 0.75))
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.set_aspect("equal")
    for row in range(n):
        for col in range(n):
            matching = row == col
            ax.add_patch(Rectangle((col, row), 1, 1, facecolor="#82b366" if matching else
                                   "#f5f5f5", edgecolor="#444444"))
            ax.text(col + 0.5, row + 0.5, f"s{row + 1}{col + 1}", ha="center", va="center",
                    fontsize=8, fontweight="bold" if matching else "normal")
    ax.set_xticks([k + 0.5 for k in range(n)], [f"text {k + 1}" for k in range(n)],
                  rotation=45, fontsize=8)
    ax.set_yticks([k + 0.5 for k in range(n)], [f"image {k + 1}" for k in range(n)],
                  fontsize=8)
    ax.xaxis.tick_top()
    fig.suptitle(f"CLIP: {n} x {n} similarities, matching pairs on the diagonal\n"
                 "rows: image -> text loss; columns: text -> image", fontsize=9)
    return fig
