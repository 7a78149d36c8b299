"""No chapter leaves training on the CPU when its setup cell picked a GPU: every call of a
course training helper (``course_lib``'s ``train`` and each ``train_*`` function) in a chapter
passes ``device=`` explicitly."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import course_lib

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted([*(REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"),
                   *(REPO_ROOT / "notebooks" / "student").glob("[0-9][0-9]*_*.ipynb")])


def training_helpers() -> set[str]:
    """Names of the course's training functions: ``train``, ``train_*`` and ``pretrain_*``."""
    names = set()
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (name == "train" or name.startswith(("train_", "pretrain_"))) \
                    and inspect.isfunction(value) \
                    and value.__module__.startswith("course_lib"):
                names.add(name)
    return names


def training_calls(notebook: Path, helpers: set[str]) -> list[tuple[int, str, bool]]:
    """(cell index, helper name, passes device=) for each helper call in the code cells."""
    calls = []
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.Call):
                continue
            # Plain names only: `tokenizer.train(...)` and `model.train()` are methods.
            if isinstance(node.func, ast.Name) and node.func.id in helpers:
                calls.append((index, node.func.id,
                              any(k.arg == "device" for k in node.keywords)))
    return calls


def test_the_search_finds_the_course_training_calls():
    """The check below cannot pass by finding nothing."""
    helpers = training_helpers()
    assert {"train", "train_fusion"} <= helpers
    chapters = {path.name[:2] for path in CHAPTERS if training_calls(path, helpers)}
    assert {"04", "05", "06", "08"} <= chapters


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda path: path.name)
def test_every_training_call_passes_the_device(notebook):
    missing = [f"cell {index}: {name}(...)" for index, name, has_device
               in training_calls(notebook, training_helpers()) if not has_device]
    assert not missing, f"{notebook.name}: training calls without device=: {missing}"
