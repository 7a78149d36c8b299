"""The shared argument checks (course_lib/_validation.py): what each accepts, converts and
refuses, and the exact messages (argument, what was expected, what came)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    ArgumentTypeError,
    as_indices,
    check_allocation,
    check_choice,
    check_distribution,
    check_flag,
    check_int,
    check_number,
    check_sequence,
    check_tensor,
    check_text,
    to_weights_dtype,
)


def test_a_wrong_kind_is_a_type_error_that_value_error_handlers_still_catch():
    with pytest.raises(TypeError) as info:
        check_int("depth", "3")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "depth must be an integer, got '3'"


@pytest.mark.parametrize("value", [True, 3.0, "3", None, [3], torch.tensor(3), 3 + 0j])
def test_check_int_refuses_what_is_not_an_integer(value):
    with pytest.raises(ArgumentTypeError, match="^n must be an integer, got "):
        check_int("n", value)


def test_check_int_accepts_numpy_integers_and_checks_the_range():
    assert check_int("n", np.int64(5), minimum=1) == 5 and type(check_int("n", np.int8(5))) is int
    with pytest.raises(ValueError, match="^n must be positive, got 0$"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match="^n must be non-negative, got -1$"):
        check_int("n", -1, minimum=0)
    with pytest.raises(ValueError, match=r"^n must be in \[1, 10\], got 11$"):
        check_int("n", 11, minimum=1, maximum=10)
    with pytest.raises(ValueError, match="^n must be at most 10, got 1000000000000$"):
        check_int("n", 10**12, maximum=10)


def test_check_number_refuses_nan_inf_bool_and_complex():
    assert check_number("t", np.float32(0.5)) == 0.5
    assert check_number("t", 2) == 2.0
    with pytest.raises(ValueError, match="^t must be a finite number, got nan$"):
        check_number("t", float("nan"))
    with pytest.raises(ValueError, match="finite"):
        check_number("t", float("inf"))
    assert check_number("t", float("inf"), finite=False) == float("inf")
    for value in (True, 1 + 2j, "1", None):
        with pytest.raises(ArgumentTypeError, match="^t must be a real number"):
            check_number("t", value)
    with pytest.raises(ValueError, match="^t must be greater than 0, got 0$"):
        check_number("t", 0.0, above=0)
    with pytest.raises(ValueError, match="^t must be less than 1, got 1$"):
        check_number("t", 1.0, below=1)


def test_check_choice_names_the_choices():
    assert check_choice("split", "test", ("train", "test")) == "test"
    with pytest.raises(ValueError, match="^split must be one of 'train', 'test', got 'val'$"):
        check_choice("split", "val", ("train", "test"))
    with pytest.raises(ValueError, match="got None"):
        check_choice("split", None, ("train", "test"))
    with pytest.raises(ValueError, match="split"):
        check_choice("split", ["train"], ("train", "test"))  # unhashable
    with pytest.raises(ArgumentTypeError):
        check_choice("mode", True, (1, 0))  # True == 1, but a bool is not a mode


def test_check_text_and_flag():
    assert check_text("text", "a") == "a"
    with pytest.raises(ArgumentTypeError, match="^text must be a string, got b'a'$"):
        check_text("text", b"a")
    assert check_flag("bias", np.bool_(True)) is True
    with pytest.raises(ArgumentTypeError, match="^bias must be True or False, got 1$"):
        check_flag("bias", 1)


def test_check_tensor_converts_numpy_arrays_without_copying():
    array = np.zeros((2, 3), dtype=np.float32)
    tensor = check_tensor("features", array)
    tensor[0, 0] = 1.0
    assert array[0, 0] == 1.0


def test_check_tensor_refuses_lists_with_a_hint():
    with pytest.raises(ArgumentTypeError, match=r"^features must be a float tensor, got a list "
                                                r"of 2 item\(s\) \(wrap it in torch.tensor"):
        check_tensor("features", [1.0, 2.0])


@pytest.mark.parametrize(("dtype", "kind", "hint"), [
    (torch.int64, "float", ".float()"), (torch.bool, "float", ".float()"),
    (torch.complex64, "float", ".float()"), (torch.float32, "int", ".long()"),
    (torch.float32, "bool", ".bool()"), (torch.int64, "bool", ".bool()"),
])
def test_check_tensor_refuses_other_kinds_with_the_conversion(dtype, kind, hint):
    with pytest.raises(ArgumentTypeError, match=f"got dtype {dtype}: convert it with") as info:
        check_tensor("x", torch.zeros(2, dtype=dtype), kind=kind)
    assert hint in str(info.value)


def test_check_tensor_named_dimensions_must_agree_across_arguments():
    dims: dict = {}
    check_tensor("query_tokens", torch.zeros(2, 3, 8), shape=("B", "N", 8), dims=dims)
    with pytest.raises(ValueError, match=r"^context_tokens has B = 4 \(shape \(4, 5, 8\)\), but "
                                         r"query_tokens has B = 2: they must agree$"):
        check_tensor("context_tokens", torch.zeros(4, 5, 8), shape=("B", "M", 8), dims=dims)
    with pytest.raises(ValueError, match=r"^x must have shape \(B, N, 8\), got \(2, 3, 7\) "
                                         r"\(dimension 2 is 7, expected 8\)$"):
        check_tensor("x", torch.zeros(2, 3, 7), shape=("B", "N", 8))
    with pytest.raises(ValueError, match=r"^x must have shape \(B, N, 8\), got \(3, 8\)$"):
        check_tensor("x", torch.zeros(3, 8), shape=("B", "N", 8))
    assert check_tensor("x", torch.zeros(5, 2, 3, 8), shape=(..., "N", 8)).shape[0] == 5


def test_check_tensor_rank_emptiness_and_finiteness():
    with pytest.raises(ValueError, match=r"^x must have shape 1-D or 2-D, got \(1, 1, 1\)$"):
        check_tensor("x", torch.zeros(1, 1, 1), ndim=(1, 2))
    with pytest.raises(ValueError, match="^x must not be empty"):
        check_tensor("x", torch.zeros(0, 3), nonempty=True)
    with pytest.raises(ValueError, match="^x contains NaN or inf$"):
        check_tensor("x", torch.tensor([0.0, float("inf")]), finite=True)
    check_tensor("x", torch.tensor([float("nan")]))  # finiteness only where asked for


def test_to_weights_dtype_casts_to_the_module_s_weights():
    layer = nn.Linear(2, 2)
    assert to_weights_dtype("x", torch.zeros(1, 2, dtype=torch.float64), layer).dtype == \
        torch.float32
    assert to_weights_dtype("x", np.zeros((1, 2)), layer.double()).dtype == torch.float64
    with pytest.raises(ArgumentTypeError, match="^x must be a float tensor"):
        to_weights_dtype("x", torch.zeros(1, 2, dtype=torch.long), layer)


def test_check_distribution():
    check_distribution("w", torch.tensor([[0.5, 0.5], [0.0, 0.0]]))  # a fully masked row: ok
    with pytest.raises(ValueError, match="^w must be non-negative"):
        check_distribution("w", torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match=r"^w must have rows that sum to 1 .* \[0.5\]$"):
        check_distribution("w", torch.tensor([0.25, 0.25]))
    with pytest.raises(ValueError, match="sum to 1"):
        check_distribution("w", torch.zeros(2), allow_empty_rows=False)


def test_check_sequence_refuses_a_single_tensor_for_a_sequence_of_tensors():
    assert check_sequence("tensors", (torch.zeros(2),), of="tensors")[0].shape == (2,)
    with pytest.raises(ArgumentTypeError, match=r"^tensors must be a list or tuple of tensors, "
                                                r"got a torch.float32 tensor of shape \(4, 2\); "
                                                r"for a single one, pass \[tensors\]$"):
        check_sequence("tensors", torch.zeros(4, 2), of="tensors")
    with pytest.raises(ArgumentTypeError, match="texts must be a list or tuple of strings"):
        check_sequence("texts", "one text", of="strings")
    with pytest.raises(ValueError, match="^tensors must hold at least 1 tensors, got 0$"):
        check_sequence("tensors", [], of="tensors", min_length=1)


def test_as_indices_reads_a_bool_mask_as_a_mask():
    mask = [True, False, True, False]
    assert as_indices("indices", mask, 4).tolist() == [0, 2]
    assert as_indices("indices", np.array(mask), 4).tolist() == [0, 2]
    assert as_indices("indices", torch.tensor(mask), 4).tolist() == [0, 2]
    assert as_indices("indices", [3, -1, 0], 4).tolist() == [3, 3, 0]
    assert as_indices("indices", range(2), 4).tolist() == [0, 1]
    with pytest.raises(ValueError, match="^indices is a bool mask of 3 entries, but there are 4"):
        as_indices("indices", [True, False, True], 4)
    with pytest.raises(ValueError, match=r"^indices must lie in \[-4, 4\) for 4 items"):
        as_indices("indices", [4], 4)
    with pytest.raises(ArgumentTypeError, match="integer positions or a bool mask"):
        as_indices("indices", [0.5], 4)
    with pytest.raises(ArgumentTypeError, match="integer positions or a bool mask"):
        as_indices("indices", torch.tensor([0.0]), 4)


def test_check_allocation_limits_memory_but_not_on_the_meta_device():
    assert check_allocation("dim * dim", MAX_ELEMENTS) == MAX_ELEMENTS
    with pytest.raises(ValueError, match="^dim \\* dim would need 67,108,865 weights, more than"):
        check_allocation("dim * dim", MAX_ELEMENTS + 1, what="weights")
    with torch.device("meta"):
        assert check_allocation("dim * dim", 10**12) == 10**12
        with pytest.raises(ValueError, match="iterations"):
            check_allocation("steps", 10**12, 10**6, what="iterations")


def test_to_weights_dtype_names_a_device_mismatch():
    with torch.device("meta"):
        layer = nn.Linear(2, 2)
    to_weights_dtype("x", torch.zeros(1, 2, device="meta"), layer)  # both on meta: fine
    cpu_layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="^x is on meta but the Linear's weights are on cpu: "
                                         "move it with .to\\('cpu'\\)$"):
        to_weights_dtype("x", torch.zeros(1, 2, device="meta"), cpu_layer, kind="float")
