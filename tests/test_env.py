import random

import numpy as np
import pytest
import torch

from course_lib import env


def test_seed_everything_makes_python_numpy_and_torch_repeat():
    env.seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    env.seed_everything(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_different_seeds_give_different_numbers():
    env.seed_everything(1)
    a = torch.rand(5)
    env.seed_everything(2)
    assert not torch.equal(a, torch.rand(5))


@pytest.mark.parametrize("bad_seed", [-1, 2**32, 1.5, "7", None, True])
def test_seed_everything_rejects_bad_seeds_naming_seed(bad_seed):
    with pytest.raises(ValueError, match="seed"):
        env.seed_everything(bad_seed)


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert env.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert env.pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert env.pick_device().type == "cpu"


def test_describe_environment_names_every_package_and_the_device():
    text = env.describe_environment()
    for name in ("python", "torch", "torchaudio", "ipywidgets", "plotly", "jupyterlab", "device"):
        assert name in text
    assert torch.__version__.split("+")[0] in text


def test_in_colab_follows_google_colab_module(monkeypatch, fake_colab):
    assert env.in_colab()
    monkeypatch.delitem(__import__("sys").modules, "google.colab")
    assert not env.in_colab()


def test_enable_colab_widgets_calls_the_widget_manager(fake_colab):
    assert env.enable_colab_widgets() is True
    assert fake_colab.output.enabled == 1


def test_enable_colab_widgets_reports_failure(fake_colab):
    def broken():
        raise RuntimeError("no widget manager")

    fake_colab.output.enable_custom_widget_manager = broken
    assert env.enable_colab_widgets() is False


def test_setup_notebook_seeds_and_returns_the_device(capsys):
    device = env.setup_notebook(seed=5)
    assert device == env.pick_device()
    assert "seed 5" in capsys.readouterr().out
    a = torch.rand(2)
    env.setup_notebook(seed=5, verbose=False)
    assert torch.equal(a, torch.rand(2))


def test_setup_notebook_uses_one_thread_by_default():
    before = torch.get_num_threads()
    env.setup_notebook(seed=0, verbose=False)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_setup_notebook_rejects_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="num_threads"):
        env.setup_notebook(seed=0, verbose=False, num_threads=bad)
