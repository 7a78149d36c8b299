from pathlib import Path

import pytest
import torch

# Tests run two workers on two cores: one thread each avoids oversubscription.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


class _FakeColabOutput:
    def __init__(self) -> None:
        self.enabled = 0

    def enable_custom_widget_manager(self) -> None:
        self.enabled += 1


@pytest.fixture
def fake_colab(monkeypatch):
    """A simulated Colab: a ``google.colab`` module whose widget manager records calls."""
    import sys
    import types

    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    colab.output = _FakeColabOutput()
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return colab
