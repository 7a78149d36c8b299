"""Sphinx configuration of the course website (`make book`).

The site is built from the committed, executed notebooks: nothing is re-executed, so the
stored outputs (numbers, figures and the still picture behind every widget) are the content.
Sphinx + MyST-NB + the Sphinx Book Theme build offline; MathJax is served from the
sphinx-mathjax-offline package instead of a CDN.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/multimodal-fusion-course/multimodal-fusion-course"

project = "Multimodal fusion: an interactive course"
author = "The course authors"
copyright = "2026, the course authors"  # noqa: A001 (Sphinx's name)

root_doc = "book/index"
# The source directory is the repository root; only the home page and the chapters are read.
include_patterns = ["book/index.md", "notebooks/[0-9][0-9]*_*.ipynb"]
exclude_patterns = ["notebooks/*_student.ipynb", "_build", ".venv*", "**/.ipynb_checkpoints"]

extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the stored outputs are the content
nb_merge_streams = True
# The chapters' stored outputs never hold a widget view (see course_lib.widgets._picture);
# a picture is preferred to plain text wherever both are stored.
nb_mime_priority_overrides = [
    ("html", "text/plain", 100),
]
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "Multimodal fusion"
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": ".",
    "use_repository_button": True,
    "use_source_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False


def _write_root_redirect(app, exception) -> None:
    """``index.html`` at the site's root, forwarding to the home page (``book/index.html``)."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>Multimodal fusion</title>'
            '<meta http-equiv="refresh" content="0; url=book/index.html">'
            '<a href="book/index.html">Multimodal fusion: an interactive course</a>\n',
            encoding="utf-8")


def setup(app) -> None:
    app.connect("build-finished", _write_root_redirect)
