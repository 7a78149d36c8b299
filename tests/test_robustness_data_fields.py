"""The record check of course_lib.data lives once, in the validation layer."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from test_robustness_support import assert_rejects

import course_lib.data
from course_lib._validation import check_fields

DATA_DIR = Path(course_lib.data.__file__).parent


def test_no_data_module_keeps_its_own_copy_of_the_field_check():
    for path in DATA_DIR.glob("*.py"):
        defined = {node.name for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.FunctionDef)}
        assert "_check_fields" not in defined and "check_fields" not in defined, path.name


@dataclass
class _Record:
    images: object
    labels: object
    captions: object


@pytest.mark.parametrize(("field", "value"), [
    ("images", torch.zeros(2, 3)), ("labels", torch.zeros(4)), ("captions", ["a"] * 2),
    ("images", [1, 2, 3]), ("labels", torch.tensor(3)), ("captions", ("a", "b", "c")),
])
def test_check_fields_names_the_field_that_disagrees_or_has_the_wrong_kind(field, value):
    fields = {"images": torch.zeros(3, 2), "labels": torch.zeros(3), "captions": ["a"] * 3}
    check_fields(_Record(**fields), ("images", "labels"), ("captions",))  # all N = 3
    fields[field] = value
    assert_rejects(check_fields, field, _Record(**fields), ("images", "labels"), ("captions",))
