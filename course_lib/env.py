"""The learner's environment: seeding, device choice, versions, and Colab detection.

Every chapter's setup cell calls :func:`setup_notebook`, so that a run is reproducible
(same seed, same numbers) and prints which versions and device it ran on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import random
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from course_lib._validation import ArgumentTypeError, check_flag, check_int, check_text, describe

REPORTED_PACKAGES = ("torch", "torchaudio", "ipywidgets", "plotly", "jupyterlab")
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"  # data the course ships; nothing is downloaded at run time


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators, and pick deterministic kernels.

    Args:
        seed: a non-negative integer below 2**32.

    Raises:
        ValueError: if ``seed`` is not an integer in [0, 2**32).
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    # Deterministic cuDNN kernels cost little at the course's sizes. (Forcing every op to be
    # deterministic would also warn on some GPU ops, so the course does not.)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def pick_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def in_colab() -> bool:
    """True when running inside Google Colab (its ``google.colab`` module is loaded)."""
    return "google.colab" in sys.modules


def package_version(name: str) -> str:
    """The installed version of a distribution, or ``"not installed"``.

    Raises:
        TypeError: naming ``name`` unless it is a non-empty string.
    """
    if not check_text("name", name).strip():
        raise ValueError("name must name a distribution (e.g. 'torch'), got an empty string")
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_torchaudio() -> tuple[ModuleType | None, str]:
    """torchaudio when it is installed and loads with this torch, else None and why not.

    ``course_lib`` itself never needs torchaudio (its log-mel spectrogram is ``torch.stft``
    with :func:`course_lib.audio.mel_filterbank`); the tests and chapter 02 compare with it
    where it is available. torchaudio's compiled library must come from the same release as
    torch; with another torch the import may fail (an OSError, an undefined symbol) or succeed
    with only the pure-Python functions working (torchaudio 2.11.1 with torch 2.15.0). So this
    imports it and runs one of the functions the course compares with.

    Returns:
        (module, "torchaudio X loads") or (None, a one-line reason).
    """
    try:
        torchaudio = importlib.import_module("torchaudio")
        torchaudio.functional.melscale_fbanks(9, 0.0, 8000.0, 4, 16000)  # and runs
    except Exception as error:  # noqa: BLE001 - ImportError, OSError, undefined symbol, ...
        if "torchaudio" in sys.modules and sys.modules["torchaudio"] is None:
            return None, "torchaudio is blocked (sys.modules['torchaudio'] is None)"
        if isinstance(error, ModuleNotFoundError) and error.name == "torchaudio":
            return None, "torchaudio is not installed"
        text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        text = text if len(text) <= 160 else text[:157] + "..."
        return None, f"torchaudio does not load with torch {torch.__version__}: {text}"
    return torchaudio, f"torchaudio {torchaudio.__version__} loads with torch {torch.__version__}"


def describe_environment() -> str:
    """A few lines naming Python, the course's key packages and the device in use."""
    device = pick_device()
    lines = [f"python      {platform.python_version()}"]
    lines += [f"{name:<11} {package_version(name)}" for name in REPORTED_PACKAGES]
    detail = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.machine()
    lines.append(f"device      {device.type} ({detail})")
    lines.append(f"colab       {'yes' if in_colab() else 'no'}")
    return "\n".join(lines)


def enable_colab_widgets() -> bool:
    """In Colab, switch on the custom widget manager that third-party widgets need.

    Returns True when custom widgets can render (always outside Colab), False when Colab's
    widget manager could not be enabled.
    """
    if not in_colab():
        return True
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception:  # noqa: BLE001 - any failure means: fall back to static figures
        return False
    return True


def setup_notebook(seed: int = 0, verbose: bool = True, num_threads: int | None = 1
                   ) -> torch.device:
    """What every chapter's first cell does: seed, enable widgets, pick and report the device.

    Args:
        seed: passed to :func:`seed_everything`.
        verbose: print the seed and the device.
        num_threads: CPU threads for PyTorch's operators (None leaves PyTorch's default). The
            course's tensors are small, so one thread is as fast as several on a quiet machine
            and many times faster on a busy one (threads waiting for each other).

    Returns:
        The device chosen by :func:`pick_device`.

    Raises:
        ValueError / TypeError: naming ``seed`` (as :func:`seed_everything`), ``verbose``
            (True or False) or ``num_threads`` (None or an integer from 1 to 1024), before
            anything is changed.
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    verbose = check_flag("verbose", verbose)
    if num_threads is not None:
        if isinstance(num_threads, (bool, np.bool_)) or not isinstance(num_threads,
                                                                     (int, np.integer)):
            raise ArgumentTypeError(f"num_threads must be a positive integer or None, got "
                                    f"{describe(num_threads)}")
        num_threads = check_int("num_threads", num_threads, minimum=1, maximum=1024)
        torch.set_num_threads(num_threads)
    seed_everything(seed)
    enable_colab_widgets()
    torch.set_printoptions(precision=4, sci_mode=False)
    device = pick_device()
    if verbose:
        print(f"seed {seed}, device {device.type}")
    return device
