"""Robustness of course_lib.env and course_lib.diagrams: seeds, thread counts, names and
diagram specifications are checked by name before anything changes or is drawn."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from test_robustness_support import assert_rejects, bad_int, covers, not_a_number

from course_lib import diagrams, env
from course_lib.diagrams import (
    audio_frontend_diagram,
    box_labels,
    clip_matrix_diagram,
    flow_diagram,
    pipeline_diagram,
    qkv_diagram,
    vit_diagram,
)


# ----------------------------------------------------------------------------- env
@covers(env.seed_everything, env.setup_notebook)
@given(bad_int(0, 2**32 - 1))
def test_seeds_outside_the_generators_range_are_refused_by_name(seed):
    assert_rejects(env.seed_everything, "seed", seed)
    assert_rejects(env.setup_notebook, "seed", seed, verbose=False, num_threads=None)


@covers(env.seed_everything)
@given(st.integers(0, 2**32 - 1), st.sampled_from([int, np.int64, np.uint32]))
def test_seed_everything_makes_every_generator_repeat(seed, kind):
    env.seed_everything(kind(seed))
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    env.seed_everything(seed)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@covers(env.setup_notebook)
@given(st.sampled_from(["verbose", "num_threads"]), st.data())
def test_setup_notebook_checks_every_argument_before_changing_anything(argument, data):
    threads = torch.get_num_threads()
    bad = {"verbose": st.sampled_from([None, "yes", 1, 0.0]),
           "num_threads": st.one_of(st.integers(-5, 0), st.just(10**9), st.just(2.0),
                                    st.just("2"), st.booleans())}[argument]
    arguments = {"seed": 0, "verbose": False, "num_threads": None, argument: data.draw(bad)}
    assert_rejects(env.setup_notebook, argument, **arguments)
    assert torch.get_num_threads() == threads  # nothing changed


@covers(env.package_version, env.pick_device, env.in_colab, env.load_torchaudio,
        env.describe_environment, env.enable_colab_widgets, env.setup_notebook)
@given(st.one_of(st.none(), st.integers(), st.just(["torch"]), st.just(b"torch"),
                 st.just("")))
def test_package_version_needs_a_name_and_the_reports_are_text(name):
    assert_rejects(env.package_version, "name", name)
    assert env.package_version("torch") == torch.__version__.split("+")[0] or \
        env.package_version("torch").startswith(torch.__version__.split("+")[0])
    assert env.package_version("no-such-distribution-xyz") == "not installed"
    assert env.pick_device().type in {"cpu", "cuda", "mps"}
    assert isinstance(env.in_colab(), bool) and env.enable_colab_widgets() in (True, False)
    module, line = env.load_torchaudio()
    assert (module is None) != line.startswith("torchaudio ") or "loads" in line
    assert "device" in env.describe_environment()
    threads = torch.get_num_threads()
    assert env.setup_notebook(np.int64(0), verbose=False, num_threads=None) == env.pick_device()
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- diagrams
BOX = ("text", (0.5, 0.5), "text")


@covers(flow_diagram)
@given(st.sampled_from(["boxes", "arrows", "title", "size", "box_width", "box_height"]),
       st.data())
def test_flow_diagram_refuses_bad_specifications_by_name(argument, data):
    arguments = {"boxes": [BOX, ("image", (0.2, 0.2), "image")], "arrows": [(0, 1)],
                 "title": "t"}
    arguments[argument] = data.draw({
        "boxes": st.sampled_from([None, [], "box", [("a", (0.5, 0.5))], [("a", (2.0, 0.5),
                                  "text")], [("a", (0.5, 0.5), "red")], [(3, (0.5, 0.5), "text")],
                                  [("a", "centre", "text")], [BOX] * 201]),
        "arrows": st.sampled_from([None, [(0, 5)], [(0,)], [("0", 1)], [(0, 1.0)], [(-1, 0)],
                                   "01"]),
        "title": st.sampled_from([None, 3, ["t"]]),
        "size": st.sampled_from([None, (10,), (0, 4), (10, 1e6), ("10", 4), 10]),
        "box_width": st.one_of(not_a_number(), st.floats(-1, 0), st.floats(1.01, 10)),
        "box_height": st.one_of(not_a_number(), st.floats(-1, 0), st.floats(1.01, 10)),
    }[argument])
    # Before: a box with two entries raised "not enough values to unpack", a string arrow
    # raised a bare TypeError.
    assert_rejects(flow_diagram, argument, **arguments)


@covers(flow_diagram, box_labels)
@settings(max_examples=10)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=5), st.floats(0, 1), st.floats(0, 1),
                          st.sampled_from(["image", "text", "audio", "shared", "plain"])),
                min_size=1, max_size=5), st.data())
def test_flow_diagram_draws_every_box_it_is_given(specs, data):
    boxes = [(label, (x, y), colour) for label, x, y, colour in specs]
    arrows = data.draw(st.lists(st.tuples(st.integers(0, len(boxes) - 1),
                                          st.integers(0, len(boxes) - 1)), max_size=4))
    fig = flow_diagram(boxes, arrows, "title")
    assert box_labels(fig) == [label for label, _, _ in boxes]
    assert_rejects(box_labels, "fig", None)
    assert_rejects(box_labels, "fig", fig.axes[0])


@covers(pipeline_diagram, vit_diagram, audio_frontend_diagram, qkv_diagram, clip_matrix_diagram)
@given(st.one_of(bad_int(2, 12), st.just(10**9)))
def test_the_course_diagrams_draw_and_the_clip_matrix_checks_its_size(n):
    assert_rejects(clip_matrix_diagram, "n", n)


@covers(pipeline_diagram, vit_diagram, audio_frontend_diagram, qkv_diagram, clip_matrix_diagram)
@pytest.mark.parametrize("draw", [pipeline_diagram, vit_diagram, audio_frontend_diagram,
                                  qkv_diagram, lambda: clip_matrix_diagram(np.int64(3))])
def test_each_course_diagram_is_a_figure_with_labels(draw):
    fig = draw()
    assert isinstance(fig, Figure) and fig.axes


@covers(diagrams.Diagram)
@pytest.mark.parametrize("draw", [pipeline_diagram, vit_diagram, audio_frontend_diagram,
                                  qkv_diagram, clip_matrix_diagram])
def test_each_diagram_renders_itself_as_png_without_pyplot(draw):
    picture = draw()._repr_png_()
    assert isinstance(picture, bytes) and picture.startswith(b"\x89PNG\r\n\x1a\n")
