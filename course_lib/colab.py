"""The Colab bootstrap: the first lines of every chapter's setup cell.

In Colab the course package is not installed, so the cell must work before ``course_lib``
can be imported: it is plain Python that clones the course and installs it *without its
dependencies*, because Colab already ships torch, torchaudio, ipywidgets and plotly, and
reinstalling torch there takes minutes and can break the runtime. Outside Colab the cell
does nothing. ``tests/test_colab_bootstrap.py`` runs this exact text against a simulated
Colab; ``tests/test_notebook_hygiene.py`` checks that every notebook starts with it.
"""

from __future__ import annotations

from course_lib._validation import check_text

COURSE_REPO_URL = "https://github.com/multimodal-fusion-course/multimodal-fusion-course"
COLAB_CHECKOUT = "/content/multimodal-fusion-course"

# Light packages that Colab may lack; torch and torchaudio are deliberately absent.
COLAB_EXTRA_PACKAGES = ("anywidget",)

BOOTSTRAP_CELL = f'''\
# Colab bootstrap: installs the course in Colab (keeping Colab's torch); elsewhere does nothing.
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("course_lib") is None:
    COURSE_REPO = "{COURSE_REPO_URL}"
    CHECKOUT = "{COLAB_CHECKOUT}"
    subprocess.run(["git", "clone", "--depth", "1", COURSE_REPO, CHECKOUT], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", CHECKOUT],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *{list(COLAB_EXTRA_PACKAGES)!r}],
                   check=True)
    sys.path.insert(0, CHECKOUT)
    importlib.invalidate_caches()
'''


def colab_badge(notebook_path: str) -> str:
    """The Markdown 'Open in Colab' badge for a notebook, e.g. ``notebooks/00_welcome.ipynb``.

    Raises:
        ValueError: if ``notebook_path`` is not a relative path (inside the repository) to an
            ``.ipynb`` file.
    """
    check_text("notebook_path", notebook_path)
    if (not notebook_path.endswith(".ipynb") or notebook_path.startswith(("/", "\\"))
            or "\\" in notebook_path or ".." in notebook_path.split("/")
            or any(c.isspace() or c in "()[]" for c in notebook_path)):
        raise ValueError(f"notebook_path must be a path inside the repository to an .ipynb "
                         f"file, such as 'notebooks/00_welcome.ipynb', got {notebook_path!r}")
    github_path = COURSE_REPO_URL.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{github_path}/blob/main/{notebook_path}"
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    return f"[![Open In Colab]({badge})]({url})"
