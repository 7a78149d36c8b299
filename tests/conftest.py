import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# The property-based robustness suite (tests/test_robustness_*.py): few examples per property
# so that the whole unit suite stays fast on two cores, a fixed seed so that a failure
# reproduces, no example database written into the repository, and a deadline per example
# (generous, for a loaded machine: each rejection is also timed against one second).
# HYPOTHESIS_PROFILE=thorough runs ten times as many examples.
settings.register_profile(
    "course", max_examples=20, deadline=5000, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("course"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))

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
