"""Fusion playground: degrade the image and the audio, drop a modality, watch each model cope.

The accuracies come from :func:`course_lib.fusion.playground_table`: every model evaluated on
test tokens precomputed at every slider position (:class:`course_lib.fusion.PlaygroundData`)
when the widget is built, so a slider move is a look-up; this module only draws the bars.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets
import plotly.graph_objects as go
import torch
from torch import nn

from course_lib._validation import ArgumentTypeError, check_choice, describe
from course_lib.fusion import (
    EarlyFusion,
    HybridFusion,
    LateFusion,
    PlaygroundData,
    playground_table,
)
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._picture import pictured

MODALITIES = ("image", "audio")


def _readout(accuracies: Mapping[str, float], dropped: list[str], chance: float) -> str:
    best = max(accuracies, key=accuracies.get)
    gone = f" without {' and '.join(dropped)}" if dropped else ""
    return (f"best{gone}: <b>{best}</b> at {accuracies[best]:.1%} "
            f"(chance is {chance:.0%})")


@pictured
def fusion_playground(models: Mapping[str, nn.Module], data: PlaygroundData,
                      image_noise: float | None = None, snr_db: float | None = None,
                      table: Mapping | None = None) -> ipywidgets.VBox:
    """Sliders for image noise and audio SNR, toggles to drop a modality, accuracy bars.

    Args:
        models: name -> trained fusion model (e.g. early, late, hybrid).
        data: test tokens precomputed at every slider level.
        image_noise, snr_db: the starting levels (default: the first precomputed ones).
        table: ``playground_table(models, data)`` when already computed (it evaluates every
            model at every setting, the slow part, which a chapter can do in an earlier cell so
            that the widget appears at once); computed here when None.

    Returns:
        The root widget; ``.image_noise``, ``.snr_db``, ``.drop_image``, ``.drop_audio``,
        ``.readout`` and ``.figure`` are attached.
    """
    if not isinstance(models, Mapping) or not models or not all(
            isinstance(name, str) and isinstance(model, nn.Module)
            for name, model in models.items()):
        raise ArgumentTypeError(f"models must be a non-empty dict of name -> nn.Module, got "
                                f"{describe(models)}")
    if not isinstance(data, PlaygroundData):
        raise ArgumentTypeError(f"data must be a PlaygroundData (build_playground_data), got "
                                f"{describe(data)}")
    noise_levels, snr_levels = sorted(data.image_tokens), sorted(data.audio_tokens)
    if image_noise is not None:
        image_noise = check_choice("image_noise", image_noise, noise_levels)
    if snr_db is not None:
        snr_db = check_choice("snr_db", snr_db, snr_levels)
    image_slider = ipywidgets.SelectionSlider(
        options=noise_levels, value=noise_levels[0] if image_noise is None else image_noise,
        description="image noise", continuous_update=True,
        style={"description_width": "initial"})
    snr_slider = ipywidgets.SelectionSlider(
        options=snr_levels, value=snr_levels[0] if snr_db is None else snr_db,
        description="audio SNR (dB)", continuous_update=True,
        style={"description_width": "initial"})
    drops = {name: ipywidgets.Checkbox(value=False, description=f"drop {name}", indent=False)
             for name in MODALITIES}
    readout = ipywidgets.HTML()
    chance = 1.0 / len(torch.unique(data.labels))
    if table is None:
        table = playground_table(models, data)
    elif not isinstance(table, Mapping) or set(next(iter(table.values()), {})) != set(models):
        raise ValueError("table must be playground_table(models, data) for these models "
                         f"({sorted(models)}), got {type(table).__name__}")

    names = list(models)
    figure = go.Figure(go.Bar(x=names, y=[0.0] * len(names), text=[""] * len(names),
                              textposition="outside", marker={"color": "#4c78a8"}))
    figure.add_hline(y=chance, line_dash="dot", annotation_text="chance")
    figure.update_layout(height=340, margin={"t": 50, "b": 50, "l": 60, "r": 20},
                         title={"text": "test accuracy", "font": {"size": 14}})
    figure.update_yaxes(title_text="accuracy on held-out voices", range=[0, 1.1])
    figure.update_xaxes(title_text="fusion strategy")
    view = live_figure(figure)

    def update(_change=None) -> None:
        dropped = [name for name, box in drops.items() if box.value]
        if len(dropped) == len(MODALITIES):
            readout.value = "<b>Keep at least one modality</b>: with none, no model can answer."
            return
        accuracies = table[image_slider.value, snr_slider.value, tuple(dropped)]
        values = [accuracies[name] for name in names]
        with view.batch_update():
            view.data[0].y = values
            view.data[0].text = [f"{value:.1%}" for value in values]
            view.layout.title.text = (f"test accuracy: image noise {image_slider.value}, "
                                      f"SNR {snr_slider.value} dB"
                                      + (f", no {' or '.join(dropped)}" if dropped else ""))
        readout.value = _readout(accuracies, dropped, chance)

    for control in (image_slider, snr_slider, *drops.values()):
        control.observe(update, names="value")
    update()
    children = [image_slider, snr_slider, ipywidgets.HBox(list(drops.values())), readout]
    children.append(as_widget(view))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    root.image_noise, root.snr_db, root.readout, root.figure = (image_slider, snr_slider,
                                                                readout, view)
    root.drop_image, root.drop_audio = drops["image"], drops["audio"]
    root.table = table
    return root


def _benchmark() -> ipywidgets.VBox:
    """The playground on 450 random test examples with small untrained models."""
    generator = torch.Generator().manual_seed(0)
    count, levels = 450, (0.0, 0.4, 0.8)

    def tokens(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(count, *shape, generator=generator)

    data = PlaygroundData(image_tokens={level: tokens((1, 64)) for level in levels},
                          audio_tokens={level: tokens((5, 32)) for level in (-12.0, 0.0)},
                          labels=torch.randint(10, (count,), generator=generator))
    flat, token_dims = {"image": 64, "audio": 160}, {"image": 64, "audio": 32}
    torch.manual_seed(0)
    models = {"early": EarlyFusion(flat, 10), "late": LateFusion(flat, 10),
              "hybrid": HybridFusion(token_dims, 10, d_model=64, depth=1, num_heads=4)}
    return fusion_playground(models, data)


BENCHMARK = _benchmark
