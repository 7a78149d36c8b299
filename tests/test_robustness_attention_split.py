"""course_lib.attention is split into one module per idea; every old import path still works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import course_lib.attention as attention
from course_lib import attention_formula, attention_masks, attention_modules, attention_weights

PARTS = (attention_formula, attention_masks, attention_modules, attention_weights)
NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").rglob("*.ipynb"))


@pytest.mark.parametrize("name", attention.__all__)
def test_every_name_of_course_lib_attention_comes_from_one_of_its_parts(name):
    obj = getattr(attention, name)
    homes = [part for part in PARTS if vars(part).get(name) is obj]
    assert len(homes) >= 1, f"{name} is defined in none of {[p.__name__ for p in PARTS]}"
    if callable(obj):  # a function or class: defined (not just imported) in its part
        assert obj.__module__ in {part.__name__ for part in PARTS}


def test_the_chapters_imports_from_course_lib_attention_resolve():
    imported = set()
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            for names in re.findall(r"from course_lib\.attention import \(?([^)\n]+)", source):
                imported |= {n.strip() for n in names.split(",") if n.strip()}
    assert imported >= {"attention_steps", "MultiHeadCrossAttention", "causal_mask"}
    missing = [name for name in imported if not hasattr(attention, name)]
    assert not missing, f"chapters import names course_lib.attention no longer has: {missing}"


@pytest.mark.parametrize("module", (attention, *PARTS), ids=lambda m: m.__name__)
def test_each_attention_module_stays_under_400_lines(module):
    assert len(Path(module.__file__).read_text().splitlines()) <= 400
