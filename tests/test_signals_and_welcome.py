import math

import ipywidgets
import plotly.graph_objects as go
import pytest
import torch

from course_lib import widgets
from course_lib.signals import magnitude_spectrum, tone
from course_lib.widgets import _base
from course_lib.widgets.welcome import SpectrumPlot, tone_explorer


def test_tone_matches_the_sine_formula():
    wave = tone(440.0, seconds=0.01, sample_rate=8000)
    assert wave.shape == (80,)
    assert wave[3].item() == pytest.approx(math.sin(2 * math.pi * 440 * 3 / 8000), abs=1e-6)


def test_magnitude_spectrum_peaks_at_the_tone_frequency():
    frequencies, magnitudes = magnitude_spectrum(tone(500.0, 0.1, 16000), 16000)
    assert frequencies[magnitudes.argmax()].item() == pytest.approx(500.0)
    assert magnitudes.max().item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"frequency_hz": 9000.0}, "frequency_hz"), ({"frequency_hz": -1.0}, "frequency_hz"),
     ({"frequency_hz": 100.0, "seconds": 0.0}, "seconds"),
     ({"frequency_hz": 100.0, "sample_rate": 0}, "sample_rate")],
)
def test_tone_rejects_bad_arguments_by_name(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        tone(**kwargs)


def test_magnitude_spectrum_rejects_a_2d_waveform():
    with pytest.raises(ValueError, match="waveform"):
        magnitude_spectrum(torch.zeros(2, 10), 16000)


def test_moving_the_slider_updates_the_plotly_waveform_and_the_matplotlib_spectrum():
    explorer = tone_explorer(440.0)
    slider, figure, spectrum = explorer.children
    before = list(figure.data[0].y)
    slider.value = 1000.0
    expected = tone(1000.0, 0.02, 16000)
    assert list(figure.data[0].y) != before
    assert figure.data[0].y[7] == pytest.approx(expected[7].item())
    assert figure.layout.title.text == "Waveform of a 1000 Hz tone"
    assert len(spectrum.outputs) == 1 and "image/png" in spectrum.outputs[0]["data"]


def test_spectrum_plot_redraws_its_line_and_title():
    plot = SpectrumPlot(700.0)
    plot.set_frequency(1200.0)
    frequencies, magnitudes = plot.line.get_data()
    assert frequencies[magnitudes.argmax()] == pytest.approx(1200.0)
    assert plot.label.get_text() == "peak at 1200 Hz"
    assert plot.png() != SpectrumPlot(700.0).png()


def test_static_fallback_when_widgets_cannot_render(monkeypatch, capsys):
    monkeypatch.setattr(_base, "live_figure_supported", lambda: False)
    figure = _base.live_figure(go.Figure())
    assert isinstance(figure, go.Figure) and not isinstance(figure, go.FigureWidget)
    assert "static figure" in capsys.readouterr().out
    view = _base.as_widget(figure)
    assert isinstance(view, ipywidgets.Output) and view.outputs
    explorer = tone_explorer()
    assert len(explorer.children) == 3
    explorer.children[0].value = 800.0  # updating the static figure must not raise


def test_a_live_figure_put_in_a_layout_carries_its_updates_in_its_state():
    """The browser may drop the update messages sent before the widget code has loaded; the
    state that the view is drawn from must hold them."""
    figure = _base.live_figure(go.Figure(go.Scatter(y=[0, 1])))
    if not isinstance(figure, go.FigureWidget):
        pytest.skip("plotly's FigureWidget is not available here")
    with figure.batch_update():
        figure.data[0].y = [3, 2, 1]
        figure.layout.title = "updated before it was shown"
    assert list(_base.as_widget(figure)._widget_data[0]["y"]) == [3, 2, 1]
    assert figure._widget_layout["title"]["text"] == "updated before it was shown"


def test_every_widget_module_offers_a_benchmark_factory():
    factories = widgets.benchmark_factories()
    assert "welcome" in factories
    for name, factory in factories.items():
        assert any(True for _ in _base.iter_controls(factory())), f"{name} has no controls"
