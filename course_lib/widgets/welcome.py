"""Chapter 00's smoke test: one slider driving a plotly FigureWidget and a matplotlib Figure."""

from __future__ import annotations

import ipywidgets
import plotly.graph_objects as go
from matplotlib.figure import Figure

from course_lib.signals import magnitude_spectrum, tone
from course_lib.widgets._base import BlittedPlot, as_widget, live_figure, show_png
from course_lib.widgets._checks import check_slider_value
from course_lib.widgets._picture import pictured

SAMPLE_RATE = 16000
WINDOW_S = 0.02  # 20 ms: a few periods of a speech-range tone


def _spectrum(frequency_hz: float):
    return magnitude_spectrum(tone(frequency_hz, WINDOW_S, SAMPLE_RATE), SAMPLE_RATE)


def _check_frequency(frequency_hz: object) -> float:
    return check_slider_value("frequency_hz", frequency_hz, 0.0, SAMPLE_RATE / 2)


class SpectrumPlot:
    """A matplotlib Figure (no pyplot) of a tone's spectrum; updates redraw only the line."""

    def __init__(self, frequency_hz: float) -> None:
        frequency_hz = _check_frequency(frequency_hz)
        self.figure = Figure(figsize=(5, 2.2), dpi=72)
        self.axes = self.figure.add_subplot()
        frequencies, magnitudes = _spectrum(frequency_hz)
        (self.line,) = self.axes.plot(frequencies.numpy(), magnitudes.numpy())
        self.label = self.axes.text(0.98, 0.9, "", transform=self.axes.transAxes, ha="right")
        self.axes.set(xlim=(0, 2000), ylim=(0, 1.1), xlabel="frequency (Hz)", ylabel="magnitude",
                      title="Spectrum of the tone")
        self.figure.subplots_adjust(left=0.12, bottom=0.22, right=0.97, top=0.86)
        self.blitted = BlittedPlot(self.figure, [self.line, self.label])
        self.set_frequency(frequency_hz)

    def set_frequency(self, frequency_hz: float) -> None:
        """Redraw the spectrum for a tone of ``frequency_hz`` (below 8 kHz, half the rate)."""
        frequency_hz = _check_frequency(frequency_hz)
        self.line.set_ydata(_spectrum(frequency_hz)[1].numpy())
        self.label.set_text(f"peak at {frequency_hz:.0f} Hz")

    def png(self) -> str:
        """The figure as base64 PNG, with the current spectrum line."""
        return self.blitted.png()


@pictured
def tone_explorer(frequency_hz: float = 440.0) -> ipywidgets.VBox:
    """A frequency slider; the waveform (plotly) and its spectrum (matplotlib) follow it."""
    frequency_hz = check_slider_value("frequency_hz", frequency_hz, 100.0, 1500.0)
    slider = ipywidgets.FloatSlider(value=frequency_hz, min=100, max=1500, step=10,
                                    description="frequency (Hz)",
                                    style={"description_width": "initial"})
    waveform = tone(frequency_hz, WINDOW_S, SAMPLE_RATE)
    times_ms = [1000 * i / SAMPLE_RATE for i in range(len(waveform))]
    figure = live_figure(go.Figure(
        go.Scatter(x=times_ms, y=waveform.tolist(), mode="lines"),
        layout=dict(title=f"Waveform of a {frequency_hz:.0f} Hz tone", height=260,
                    xaxis_title="time (ms)", yaxis_title="amplitude",
                    margin=dict(l=50, r=20, t=40, b=40)),
    ))
    spectrum_plot, spectrum = SpectrumPlot(frequency_hz), ipywidgets.Output()
    show_png(spectrum, spectrum_plot.png(), "spectrum of the tone")

    def update(change: dict) -> None:
        with figure.batch_update():
            figure.data[0].y = tone(change["new"], WINDOW_S, SAMPLE_RATE).tolist()
            figure.layout.title.text = f"Waveform of a {change['new']:.0f} Hz tone"
        spectrum_plot.set_frequency(change["new"])
        show_png(spectrum, spectrum_plot.png(), "spectrum of the tone")

    slider.observe(update, names="value")
    return ipywidgets.VBox([slider, as_widget(figure), spectrum])


BENCHMARK = tone_explorer
