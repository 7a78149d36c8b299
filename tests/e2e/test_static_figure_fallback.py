"""Without a widget manager (no anywidget, or Colab's custom manager off) every view still works.

Each view module's benchmark widget is built with ``live_figure_supported()`` forced False:
its plotly figures must come as static figures inside ``Output`` widgets (never a raw figure in
a Box, which ipywidgets refuses), the one-line explanation must be printed, and moving every
control must not raise.
"""

import inspect

import ipywidgets
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from course_lib import widgets
from course_lib.widgets import _base

FACTORIES = widgets.benchmark_factories()


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def _another_value(control):
    """A different legal value for a control (the next option, one step, toggled...)."""
    if isinstance(control, ipywidgets.Text):
        return control.value + " more"
    if isinstance(control, (ipywidgets.Checkbox, ipywidgets.ToggleButton)):
        return not control.value
    options = getattr(control, "options", None)
    if options:
        values = [option[1] if isinstance(option, tuple) else option for option in options]
        return values[(values.index(control.value) + 1) % len(values)]
    if hasattr(control, "max"):
        return control.min if control.value == control.max else control.max
    raise AssertionError(f"no other value known for {type(control).__name__}")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_view_falls_back_to_a_static_figure(name, monkeypatch, capsys):
    monkeypatch.setattr(_base, "live_figure_supported", lambda: False)
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # never open a browser
    shown = []  # (Output widget, what it was asked to display)
    append = ipywidgets.Output.append_display_data

    def recording_append(output, display_object):
        shown.append((output, display_object))
        return append(output, display_object)

    monkeypatch.setattr(ipywidgets.Output, "append_display_data", recording_append)
    # The other way to fill an Output: `with output: figure.show()` (captured in a kernel).
    inside = []
    enter, leave = ipywidgets.Output.__enter__, ipywidgets.Output.__exit__
    monkeypatch.setattr(ipywidgets.Output, "__enter__",
                        lambda output: (inside.append(output), enter(output))[1])
    monkeypatch.setattr(ipywidgets.Output, "__exit__",
                        lambda output, *exc: (inside.pop(), leave(output, *exc))[1])
    monkeypatch.setattr(go.Figure, "show", lambda figure, *args, **kwargs: shown.append(
        (inside[-1] if inside else None, figure)))
    module = inspect.getmodule(FACTORIES[name])
    uses_plotly = "live_figure(" in inspect.getsource(module)

    root = FACTORIES[name]()  # a raw go.Figure in a Box would raise a TraitError here
    printed = capsys.readouterr().out

    parts = list(_tree(root))
    assert not any(isinstance(part, go.FigureWidget) for part in parts)
    if uses_plotly:
        assert _base.STATIC_FIGURE_NOTE in printed, "the one-line explanation was not printed"
        static = [output for output, shown_object in shown
                  if isinstance(shown_object, go.Figure) and any(output is part for part in parts)]
        assert static, "no static plotly figure is shown in an Output of the layout"
    for control in _base.iter_controls(root):
        control.value = _another_value(control)  # a callback on a static figure must not raise
