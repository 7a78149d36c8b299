"""Mel explorer: n_fft, hop and n_mels sliders over a real spoken digit's log-mel spectrogram.

A longer window (n_fft) sharpens frequency and blurs time; a shorter hop means more frames
per second (and more audio tokens); more mel bands than the FFT has bins at low
frequencies leaves some filters empty. The numbers come from
:func:`course_lib.audio.mel_explorer_data`; this module only draws them.

The image is sent to the browser as a small PNG (a plotly ``Image`` trace) rather than as a
heatmap's nested lists of numbers: at a 40-sample hop that is 128 x 401 values, whose
serialisation alone took longer than the 50 ms budget for a slider update.
"""

from __future__ import annotations

import base64
import io

import ipywidgets
import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib import colormaps
from PIL import Image

from course_lib._validation import check_int, check_number, check_tensor
from course_lib.audio import mel_explorer_data
from course_lib.widgets._base import as_widget, live_figure
from course_lib.widgets._checks import as_float_array, check_optional_text
from course_lib.widgets._picture import pictured

N_FFT_CHOICES = (128, 256, 400, 512, 1024)
DISPLAY_RANGE = 16.0  # colour scale spans the loudest value minus 16 nats (about 70 dB)
COLOURS = "viridis"
COLOUR_TABLE = colormaps[COLOURS](np.linspace(0.0, 1.0, 256), bytes=True)[:, :3]  # (256, 3)


def log_mel_png(log_mel: np.ndarray, low: float, high: float) -> str:
    """A PNG data URI of ``log_mel`` (n_mels, frames), highest band on the top row.

    Values are mapped linearly from [low, high] onto the colour map (clipped outside).
    """
    log_mel = as_float_array("log_mel", log_mel, ndim=2)
    low = check_number("low", low)
    high = check_number("high", high, above=low)
    scaled = ((log_mel[::-1] - low) / (high - low)).clip(0.0, 1.0)
    rgb = COLOUR_TABLE[(scaled * 255).round().astype(np.uint8)]  # (n_mels, frames, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="png", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _readout_html(data: dict, seconds: float) -> str:
    return (
        f"window {data['window_ms']:.1f} ms ({data['hz_per_fft_bin']:.1f} Hz per FFT bin), "
        f"hop {data['hop_ms']:.1f} ms &rarr; <b>{data['frames_per_second']:.1f} frames/s</b>; "
        f"{data['frames']} frames for this {seconds:.2f} s clip &rarr; "
        f"{data['tokens_after_3_convs']} tokens after three stride-2 convolutions<br>"
        f"empty mel filters (no FFT bin inside): {data['empty_filters']}"
    )


@pictured
def mel_explorer(waveform: torch.Tensor | None = None, sample_rate: int = 16000,
                 label: str | None = None) -> ipywidgets.VBox:
    """Sliders for n_fft, hop_length and n_mels over the log-mel image of one clip.

    Args:
        waveform: (L,) samples; default: the first clip of the course's spoken-digit test split.
        sample_rate: samples per second of ``waveform``.
        label: what the clip says, for the title.

    Returns:
        The root widget; ``.n_fft``, ``.hop``, ``.n_mels``, ``.readout``, ``.figure`` attached.
    """
    sample_rate = check_int("sample_rate", sample_rate, minimum=1000, maximum=384_000)
    label = check_optional_text("label", label)
    if waveform is None:
        from course_lib.data import DIGIT_NAMES, load_digits_av

        test = load_digits_av("test", seed=0)
        waveform, sample_rate = test.waveforms[0], test.sample_rate
        label = f'"{DIGIT_NAMES[int(test.labels[0])]}"'
    waveform = check_tensor("waveform", waveform, shape=("L",), finite=True)
    if len(waveform) < max(N_FFT_CHOICES):
        raise ValueError(f"waveform must hold at least {max(N_FFT_CHOICES)} samples (the "
                         f"largest window), got {len(waveform)}")
    seconds = len(waveform) / sample_rate
    n_fft = ipywidgets.SelectionSlider(options=N_FFT_CHOICES, value=400, description="n_fft")
    hop = ipywidgets.IntSlider(value=160, min=40, max=400, step=20, description="hop")
    n_mels = ipywidgets.IntSlider(value=128, min=16, max=128, step=8, description="n_mels")
    readout = ipywidgets.HTML()
    figure = go.Figure([
        go.Image(source=None, hoverinfo="skip"),
        # An invisible scatter whose only job is to draw the colour bar.
        go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip", marker={
            "color": [0.0, 1.0], "colorscale": COLOURS.capitalize(), "showscale": True,
            "colorbar": {"title": {"text": "ln(mel power)"}}}),
    ])
    figure.update_layout(width=720, height=380, showlegend=False,
                         margin={"t": 50, "b": 50, "l": 60, "r": 10})
    figure.update_xaxes(title_text="time (s)")
    # Image traces default to square pixels (scaleanchor "x"); seconds and bands are not alike.
    figure.update_yaxes(title_text="mel band (low at the bottom)", scaleanchor=False)
    view = live_figure(figure)

    def update(_change=None) -> None:
        data = mel_explorer_data(waveform, sample_rate, int(n_fft.value), int(hop.value),
                                 int(n_mels.value))
        # NumPy from here: single-threaded, which is faster for arrays this small.
        log_mel, bands = data["log_mel"].numpy(), int(n_mels.value)
        top = round(float(log_mel.max()), 2)
        step = int(hop.value) / sample_rate
        band_ticks = list(range(0, bands, 16))
        with view.batch_update():
            # Pixel (row r, column t) is centred on x = t * hop / sample_rate seconds and
            # shows band (bands - 1 - r): the image is drawn top row first.
            view.data[0].source = log_mel_png(log_mel, top - DISPLAY_RANGE, top)
            view.data[0].x0, view.data[0].dx = 0.0, step
            view.data[0].y0, view.data[0].dy = 0.0, 1.0
            view.data[1].marker.cmin, view.data[1].marker.cmax = top - DISPLAY_RANGE, top
            view.layout.xaxis.range = [-step / 2, (data["frames"] - 0.5) * step]
            view.layout.yaxis.range = [bands - 0.5, -0.5]
            view.layout.yaxis.tickvals = [bands - 1 - b for b in band_ticks]
            view.layout.yaxis.ticktext = [str(b) for b in band_ticks]
            view.layout.title = {
                "text": f"log-mel of {label or 'the clip'}: {int(n_mels.value)} bands x "
                        f"{data['frames']} frames ({data['frames_per_second']:.1f} frames/s)",
                "font": {"size": 14}}
        readout.value = _readout_html(data, seconds)

    for control in (n_fft, hop, n_mels):
        control.observe(update, names="value")
    update()
    children = [ipywidgets.HBox([n_fft, hop, n_mels]), readout]
    children.append(as_widget(view))  # a static figure where widgets cannot render
    root = ipywidgets.VBox(children)
    root.n_fft, root.hop, root.n_mels, root.readout, root.figure = (n_fft, hop, n_mels, readout,
                                                                    view)
    return root


BENCHMARK = mel_explorer
