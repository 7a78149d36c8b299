import pytest
import torch

from course_lib.projection import Projection

X = [0.5, -0.2, 0.8]
W = [[0.3, -0.1, 0.5], [0.2, 0.4, -0.3]]
B = [0.1, 0.0]


def test_worked_example_gives_hand_computed_values():
    # h1 = 0.3*0.5 + (-0.1)(-0.2) + 0.5*0.8 + 0.1 = 0.15 + 0.02 + 0.40 + 0.1 = 0.67
    # h2 = 0.2*0.5 + 0.4*(-0.2) + (-0.3)(0.8) + 0.0 = 0.10 - 0.08 - 0.24 = -0.22
    projection = Projection.from_parameters(W, B)
    torch.testing.assert_close(projection(torch.tensor(X)), torch.tensor([0.67, -0.22]))


def test_set_parameters_on_an_existing_projection():
    projection = Projection(3, 2).set_parameters(W, B)
    torch.testing.assert_close(projection.weight, torch.tensor(W))
    torch.testing.assert_close(projection.bias, torch.tensor(B))
    torch.testing.assert_close(projection(torch.tensor([X])), torch.tensor([[0.67, -0.22]]))


def test_projects_every_token_of_a_sequence():
    torch.manual_seed(0)
    projection = Projection(192, 256)
    tokens = torch.randn(2, 13, 192)  # (B, T, in_dim): 13 audio tokens
    out = projection(tokens)
    assert out.shape == (2, 13, 256)
    expected = tokens @ projection.weight.T + projection.bias
    torch.testing.assert_close(out, expected)


def test_without_bias():
    projection = Projection.from_parameters(W)
    assert projection.bias is None
    torch.testing.assert_close(projection(torch.tensor(X)), torch.tensor([0.57, -0.22]))


def test_wrong_input_width_raises():
    with pytest.raises(ValueError, match="features has width 4.*in_dim=3"):
        Projection(3, 2)(torch.zeros(5, 4))


def test_wrong_parameter_shapes_raise():
    with pytest.raises(ValueError, match="weight must have shape"):
        Projection(3, 2).set_parameters([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="bias must have shape"):
        Projection(3, 2).set_parameters(W, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="bias"):
        Projection(3, 2, bias=False).set_parameters(W, B)
    with pytest.raises(ValueError, match="in_dim"):
        Projection(0, 2)
