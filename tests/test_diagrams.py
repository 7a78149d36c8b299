"""The course's diagrams: real figures with the expected labelled boxes and arrows."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from course_lib.diagrams import (
    audio_frontend_diagram,
    box_labels,
    clip_matrix_diagram,
    flow_diagram,
    pipeline_diagram,
    qkv_diagram,
    vit_diagram,
)


def _arrows(fig: Figure) -> int:
    return sum(isinstance(p, FancyArrowPatch) for ax in fig.axes for p in ax.patches)


def test_pipeline_has_an_encoder_and_projection_per_modality_and_one_joint_model():
    fig = pipeline_diagram()
    labels = box_labels(fig)
    assert isinstance(fig, Figure) and len(labels) == 11
    assert sum(label.startswith("projection") for label in labels) == 3
    assert any("vision encoder" in label for label in labels)
    assert any("audio encoder" in label for label in labels)
    assert sum("joint model" in label for label in labels) == 1
    assert _arrows(fig) == 10


def test_vit_diagram_goes_from_patches_to_cls():
    labels = box_labels(vit_diagram())
    assert labels[0].startswith("image") and "196 patches" in labels[1]
    assert "197" in labels[3] and labels[-1].startswith("CLS vector")


def test_audio_frontend_follows_the_frame_and_token_counts():
    fig = audio_frontend_diagram()
    text = " ".join(box_labels(fig))
    for piece in ("waveform", "hop 160", "101", "log-mel", "101 -> 51 -> 26 -> 13"):
        assert piece in text
    assert _arrows(fig) == 4


def test_qkv_diagram_takes_queries_from_text_and_keys_values_from_the_image():
    labels = box_labels(qkv_diagram())
    assert any(label.startswith("Q = text") for label in labels)
    assert any(label.startswith("K = patches") for label in labels)
    assert any(label.startswith("V = patches") for label in labels)
    assert any("softmax" in label for label in labels)


def test_clip_matrix_marks_exactly_the_diagonal():
    fig = clip_matrix_diagram(5)
    cells = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert len(cells) == 25
    green = [(int(c.get_x()), int(c.get_y())) for c in cells
             if c.get_facecolor()[:3] != (0.9607843137254902,) * 3]
    assert sorted(green) == [(k, k) for k in range(5)]


@pytest.mark.parametrize("make", [pipeline_diagram, vit_diagram, audio_frontend_diagram,
                                  qkv_diagram, clip_matrix_diagram])
def test_a_diagram_displays_as_png_in_a_kernel_that_has_not_used_pyplot(make):
    # IPython's own PNG formatter, with no inline backend registered: what a chapter's first
    # cell gets when a diagram comes before any pyplot figure.
    from IPython.core.formatters import PNGFormatter

    png = PNGFormatter()(make())
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert PNGFormatter()(Figure()) is None  # a bare Figure has no picture of its own


@pytest.mark.parametrize("n", [1, 13, 2.5, True])
def test_clip_matrix_rejects_bad_sizes(n):
    with pytest.raises(ValueError, match="n must be"):
        clip_matrix_diagram(n)


def test_flow_diagram_rejects_bad_boxes_and_arrows():
    with pytest.raises(ValueError, match="at least one box"):
        flow_diagram([], [], "empty")
    with pytest.raises(ValueError, match="colour"):
        flow_diagram([("a", (0.5, 0.5), "purple")], [], "t")
    with pytest.raises(ValueError, match="outside"):
        flow_diagram([("a", (0.5, 0.5), "plain")], [(0, 1)], "t")
