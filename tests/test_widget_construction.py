"""The first plotly FigureWidget of a kernel skips the optional grammar compilation that made it
take seconds (course_lib.widgets._base.figure_widget_class), and changes nothing else."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None,
                    reason="rfc3987_syntax is not installed: nothing to skip")
def test_first_figure_widget_skips_the_grammar_compilation_and_allows_it_afterwards():
    out = _fresh("""
        import sys
        import plotly.graph_objects as go
        from course_lib.widgets._base import figure_widget_class
        cls = figure_widget_class()
        widget = cls(go.Figure(go.Bar(x=[1, 2], y=[3, 4])))
        print(cls is go.FigureWidget, "jsonschema" in sys.modules, "rfc3987_syntax" in sys.modules)
        import rfc3987_syntax  # still importable by anyone who asks for it
        print(rfc3987_syntax.is_valid_syntax("iri", "https://example.org/a"))
        print(list(widget.data[0].y))
    """)
    assert out == ["True", "True", "False", "True", "[3,", "4]"]


def test_an_already_loaded_jsonschema_is_left_alone():
    out = _fresh("""
        import sys
        import jsonschema
        before = sys.modules.get("rfc3987_syntax")
        from course_lib.widgets._base import figure_widget_class
        figure_widget_class()
        print(sys.modules.get("rfc3987_syntax") is before)
    """)
    assert out == ["True"]
