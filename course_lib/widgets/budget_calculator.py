"""Token-budget calculator: images, audio and a prompt in a context window, memory beside it.

The numbers come from :func:`course_lib.budget.calculate_budget` (which never raises: an
impossible setting comes back as a message) and the presets from
:data:`course_lib.budget.PRESETS`; the prompt is tokenised live with the course's
:class:`course_lib.text.BPETokenizer`. With a preset, the model's own rules count the
images and the clip (its resize, tiling or truncation); with *custom*, a bare ViT and an
STFT + convolution front end built from the recipe controls do. This module only draws.
"""

from __future__ import annotations

import html

import ipywidgets
import plotly.graph_objects as go

from course_lib._validation import check_int, check_text
from course_lib.budget import DOWNSAMPLING_STACKS, PRESETS, BudgetReport, calculate_budget
from course_lib.text import SAMPLE_TEXT, BPETokenizer
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._checks import check_tokenizer
from course_lib.widgets._picture import pictured

CUSTOM = "custom"
CONTEXT_ROW, MEMORY_ROW = "context", "memory"
SEGMENT_COLOURS = {"images": "#4c78a8", "audio": "#f58518", "prompt": "#54a24b",
                   "left for generation": "#d9d9d9"}
MEMORY_COLOURS = {"image memory": "#9ecae9", "audio memory": "#ffbf79"}
IMAGE_MODE_OPTIONS = (("CLS token", "cls"), ("patch tokens", "patches"),
                      ("patches + CLS", "patches+cls"), ("resampler latents", "resampler"))
FRAMING_OPTIONS = (("centre-padded (torch.stft)", "centre"),
                   ("centre, last frame dropped (Whisper)", "centre-drop-last"),
                   ("no padding", "no-padding"))
PATCH_SIZES = (8, 14, 16, 28, 32)
WINDOW_SECONDS = 30.0
MAX_CONTEXT = 8192  # the slider's range; a preset with a longer context extends it


def default_tokenizer(vocab_size: int = 400) -> BPETokenizer:
    """The course's BPE trained on its sample paragraph (a small corpus: fast to train)."""
    vocab_size = check_int("vocab_size", vocab_size, minimum=256)
    return BPETokenizer().train(SAMPLE_TEXT, vocab_size=vocab_size)


def _figure() -> go.Figure:
    """Two stacked bars: the context window, and the cross-attended memory beside it."""
    figure = go.Figure()
    for name, colour in SEGMENT_COLOURS.items():
        figure.add_bar(x=[0], y=[CONTEXT_ROW], orientation="h", name=name,
                       marker={"color": colour})
    for name, colour in MEMORY_COLOURS.items():
        figure.add_bar(x=[0], y=[MEMORY_ROW], orientation="h", name=name,
                       marker={"color": colour})
    figure.update_layout(barmode="stack", height=250, margin={"t": 50, "b": 45, "l": 80, "r": 20},
                         legend={"orientation": "h", "y": -0.4, "font": {"size": 11}})
    figure.update_yaxes(categoryorder="array", categoryarray=[MEMORY_ROW, CONTEXT_ROW])
    figure.update_xaxes(title_text="positions (context window; memory read by cross-attention)")
    return figure


def _shapes(report: BudgetReport) -> list[dict]:
    """A dashed line at the context length on the context bar and a red band when over."""
    line = {"type": "line", "x0": report.context_length, "x1": report.context_length,
            "y0": 0.5, "y1": 1.5, "line": {"color": "black", "dash": "dash", "width": 2}}
    shapes = [line]
    if report.over_budget:
        shapes.append({"type": "rect", "x0": report.context_length, "x1": report.used,
                       "y0": 0.5, "y1": 1.5, "fillcolor": "red", "opacity": 0.35,
                       "line": {"width": 0}})
    return shapes


def _message_html(report: BudgetReport) -> str:
    if report.error is not None or report.over_budget:
        colour, background = "#8b0000", "#fde2e2"
    else:
        colour, background = "#1d5e20", "#e3f4e1"
    return (f"<div style='padding:6px 10px;border-radius:6px;color:{colour};"
            f"background:{background};font-weight:bold'>{html.escape(report.message)}</div>")


def _readout_html(report: BudgetReport, prompt_pieces: list[str], preset: str) -> str:
    lines = [f"<b>Tokens left for generation: {report.remaining}</b> "
             f"(used {report.used} of {report.context_length})",
             f"cross-attended memory: {report.memory} positions (not in the context)"]
    lines += [html.escape(detail) for detail in report.details]
    pieces = " | ".join(html.escape(piece) for piece in prompt_pieces)
    lines.append(f"prompt tokens (course BPE): <code>{pieces}</code>")
    if preset != CUSTOM:
        lines.append(f"<small>preset <b>{preset}</b> ({PRESETS[preset].kind}): "
                     f"{html.escape(PRESETS[preset].source)}. Its own rules count the images "
                     "and audio; the recipe controls apply to <i>custom</i> (moving one "
                     "switches to it).</small>")
    return "<br>".join(lines)


@pictured
def budget_calculator(context_length: int = 512, prompt: str = "What is this?",
                      tokenizer: BPETokenizer | None = None) -> ipywidgets.VBox:
    """The calculator: every control re-counts the budget and redraws the two bars.

    Args:
        context_length: starting context window (the micro-omni design: 512).
        prompt: starting prompt text.
        tokenizer: a trained BPE (default: :func:`default_tokenizer`).

    Returns:
        The root widget. Controls are attached as attributes (``.context``, ``.images``,
        ``.height``, ``.width``, ``.image_mode``, ``.patch``, ``.latents``, ``.extra``,
        ``.seconds``, ``.hop``, ``.framing``, ``.downsampling``, ``.window``, ``.prompt``,
        ``.preset``), as are ``.readout``, ``.message``, ``.figure`` and ``.report()``.
        Inputs (context, images, image size, seconds, prompt) keep the preset; moving a
        recipe control (mode, patch, latents, delimiters, hop, framing, downsampling,
        window) switches to custom.
    """
    context_length = check_int("context_length", context_length, minimum=1,
                               maximum=2**31 - 1)  # a slider's value is a 32-bit integer
    prompt = check_text("prompt", prompt)
    tokenizer = default_tokenizer() if check_tokenizer(tokenizer) is None else tokenizer
    style = {"description_width": "110px"}
    wide = ipywidgets.Layout(width="420px")
    preset = ipywidgets.ToggleButtons(options=(CUSTOM, *PRESETS), value="micro-omni",
                                      description="preset", style=style)
    context = ipywidgets.IntSlider(context_length, min=min(32, context_length),
                                   max=max(MAX_CONTEXT, context_length), step=4,
                                   description="context", style=style, layout=wide)
    images = ipywidgets.IntSlider(1, min=0, max=8, description="images", style=style,
                                  layout=wide)
    height = ipywidgets.IntSlider(224, min=1, max=4096, description="height px", style=style,
                                  layout=wide)
    width = ipywidgets.IntSlider(224, min=1, max=4096, description="width px", style=style,
                                 layout=wide)
    image_mode = ipywidgets.Dropdown(options=IMAGE_MODE_OPTIONS, value="cls",
                                     description="image mode", style=style, layout=wide)
    patch = ipywidgets.Dropdown(options=PATCH_SIZES, value=16, description="patch px",
                                style=style, layout=wide)
    latents = ipywidgets.IntSlider(64, min=1, max=256, description="latents", style=style,
                                   layout=wide)
    extra = ipywidgets.IntSlider(0, min=0, max=4, description="delimiters/img", style=style,
                                 layout=wide)
    seconds = ipywidgets.FloatSlider(3.0, min=0.0, max=120.0, step=0.05, description="audio s",
                                     style=style, layout=wide)
    hop = ipywidgets.IntSlider(160, min=80, max=400, step=16, description="hop samples",
                               style=style, layout=wide)
    framing = ipywidgets.Dropdown(options=FRAMING_OPTIONS, value="centre",
                                  description="STFT framing", style=style, layout=wide)
    downsampling = ipywidgets.Dropdown(options=tuple(DOWNSAMPLING_STACKS),
                                       value=next(iter(DOWNSAMPLING_STACKS)),
                                       description="downsampling", style=style, layout=wide)
    window = ipywidgets.Checkbox(False, description="pad to 30 s windows (Whisper)",
                                 indent=False, style={"description_width": "initial"},
                                 layout=ipywidgets.Layout(width="420px"))
    prompt_box = ipywidgets.Text(prompt, description="prompt", continuous_update=True,
                                 style=style, layout=wide)
    readout, message = ipywidgets.HTML(), ipywidgets.HTML()
    view = live_figure(_figure())
    inputs = (context, images, height, width, seconds, prompt_box)
    recipe = (image_mode, patch, latents, extra, hop, framing, downsampling, window)
    state = {"applying": False, "report": None}

    def update() -> None:
        ids = tokenizer.encode(prompt_box.value)
        chosen = None if preset.value == CUSTOM else preset.value
        report = calculate_budget(
            context.value, images.value, image_mode.value, patch_size=patch.value,
            num_latents=latents.value, image_extra_tokens=extra.value,
            audio_seconds=round(seconds.value, 2), hop_length=hop.value, framing=framing.value,
            downsampling=downsampling.value,
            window_seconds=WINDOW_SECONDS if window.value else None,
            pad_to_window=window.value, prompt_tokens=len(ids), preset=chosen,
            image_height=height.value, image_width=width.value)
        state["report"] = report
        values = (dict(report.segments) | dict(report.memory_segments)
                  | {"left for generation": report.remaining})
        title = (report.message if report.error is None else "invalid settings: see the message")
        longest = max(report.used, report.context_length, report.memory)
        with view.batch_update():
            for trace in view.data:
                trace.x = [values.get(trace.name, 0)]
            view.layout.shapes = _shapes(report)
            view.layout.title = {"text": title, "font": {"size": 13}}
            view.layout.xaxis.range = [0, 1.05 * longest]
        message.value = _message_html(report)
        readout.value = _readout_html(report, tokenizer.token_strings(ids), preset.value)

    def on_input(_change) -> None:
        if not state["applying"]:
            update()

    def on_recipe(_change) -> None:
        if state["applying"]:
            return
        if preset.value != CUSTOM:  # a hand-moved recipe control leaves the preset
            state["applying"] = True
            preset.value = CUSTOM
            state["applying"] = False
        update()

    def on_preset(change) -> None:
        if state["applying"]:
            return
        if change["new"] != CUSTOM:
            state["applying"] = True
            try:
                _apply_preset(change["new"])
            finally:
                state["applying"] = False
        update()

    def _apply_preset(name: str) -> None:
        chosen = PRESETS[name]
        context.max = max(MAX_CONTEXT, chosen.context_length or 0)
        if chosen.context_length is not None:
            context.value = chosen.context_length
        images.value = 0 if chosen.image is None else max(images.value, 1)
        if chosen.audio is None:
            seconds.value = 0.0
        elif seconds.value == 0:
            seconds.value = 3.0
        if name == "micro-omni":  # the course's design is also a custom recipe
            image_mode.value, patch.value, latents.value, extra.value = "cls", 16, 64, 0
            hop.value, framing.value, window.value = 160, "centre", False
            downsampling.value = next(iter(DOWNSAMPLING_STACKS))

    for control in inputs:
        control.observe(on_input, names="value")
    for control in recipe:
        control.observe(on_recipe, names="value")
    preset.observe(on_preset, names="value")
    on_preset({"new": preset.value})
    if context.value != context_length:  # the starting preset set its own window: the
        context.max = max(context.max, context_length)  # argument wins (and re-counts)
        context.min = min(context.min, context_length)
        context.value = context_length

    box = ipywidgets.VBox
    columns = ipywidgets.HBox([
        box([ipywidgets.HTML("<b>Context and text</b>"), context, prompt_box]),
        box([ipywidgets.HTML("<b>Images</b>"), images, height, width,
             ipywidgets.HTML("<i>custom recipe</i>"), image_mode, patch, latents, extra]),
        box([ipywidgets.HTML("<b>Audio</b>"), seconds, ipywidgets.HTML("<i>custom recipe</i>"),
             hop, framing, downsampling, window]),
    ], layout=ipywidgets.Layout(flex_flow="row wrap"))
    children = [preset, columns, message, readout]
    children.append(as_widget(view))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    for name, control in (("context", context), ("images", images), ("height", height),
                          ("width", width), ("image_mode", image_mode), ("patch", patch),
                          ("latents", latents), ("extra", extra), ("seconds", seconds),
                          ("hop", hop), ("framing", framing), ("downsampling", downsampling),
                          ("window", window), ("prompt", prompt_box)):
        setattr(root, name, control)
    root.preset, root.readout, root.message, root.figure = preset, readout, message, view
    root.report = lambda: state["report"]
    return root


BENCHMARK = budget_calculator
