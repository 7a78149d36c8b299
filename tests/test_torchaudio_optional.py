"""course_lib runs without torchaudio: nothing imports it, and the log-mel and the stored clips'
mu-law decoding are plain torch. Where torchaudio loads, it is the reference."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from packaging.version import Version

from course_lib.audio import mu_law_decode
from course_lib.env import load_torchaudio

REPO_ROOT = Path(__file__).resolve().parent.parent
torchaudio, TORCHAUDIO_STATUS = load_torchaudio()


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


EVERY_MODULE = """
import importlib, pkgutil, sys
import course_lib
names = ["course_lib"] + [info.name for info in
         pkgutil.walk_packages(course_lib.__path__, "course_lib.")]
for name in names:
    importlib.import_module(name)
print(len(names), "modules")
"""


def test_every_course_lib_module_imports_with_torchaudio_blocked():
    result = _run("import sys\nsys.modules['torchaudio'] = None\n" + EVERY_MODULE + """
from course_lib.env import load_torchaudio
print(load_torchaudio()[1])
""")
    assert result.returncode == 0, result.stderr[-3000:]
    count = int(result.stdout.split()[0])
    assert count >= 20, result.stdout  # the package, its data/ and widgets/ subpackages
    assert "torchaudio is blocked" in result.stdout


def test_importing_course_lib_does_not_load_torchaudio():
    result = _run(EVERY_MODULE + "print('torchaudio' in sys.modules)\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "False"


def test_the_course_data_and_log_mel_work_with_torchaudio_blocked():
    result = _run("""
        import sys
        sys.modules['torchaudio'] = None
        import torch
        from course_lib.audio import log_mel_spectrogram
        from course_lib.data import load_digits_av
        data = load_digits_av("test")
        mel = log_mel_spectrogram(data.waveforms[:2])
        print(tuple(mel.shape), bool(torch.isfinite(mel).all()))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "(2, 128, 101) True"


def test_mu_law_decode_by_hand():
    decoded = mu_law_decode(torch.tensor([0, 255, 128, 127]))
    # y = 2 * code / 255 - 1; x = sign(y) * (256 ** |y| - 1) / 255
    by_hand = [math.copysign((256 ** abs(y) - 1) / 255, y)
               for y in (2 * c / 255 - 1 for c in (0, 255, 128, 127))]
    assert decoded.dtype == torch.float32
    torch.testing.assert_close(decoded, torch.tensor(by_hand), rtol=0, atol=1e-6)
    assert decoded[0] == -1 and decoded[1] == 1


@pytest.mark.skipif(torchaudio is None, reason=TORCHAUDIO_STATUS)
@pytest.mark.parametrize("channels", [256, 16, 2])
def test_mu_law_decode_equals_torchaudio(channels):
    codes = torch.arange(channels).repeat(3)
    expected = torchaudio.functional.mu_law_decoding(codes, channels)
    torch.testing.assert_close(mu_law_decode(codes, channels), expected, rtol=0, atol=0)
    numpy_codes = codes.numpy().astype("uint8" if channels <= 256 else "int64")
    torch.testing.assert_close(mu_law_decode(numpy_codes, channels), expected, rtol=0, atol=0)


def test_mu_law_decode_refuses_bad_codes():
    with pytest.raises(ValueError, match=r"codes must be integers, got dtype torch.float32"):
        mu_law_decode(torch.zeros(3))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 255\], got \[0, 256\]"):
        mu_law_decode(torch.tensor([0, 256]))
    with pytest.raises(ValueError, match="quantization_channels must be at least 2, got 1"):
        mu_law_decode(torch.tensor([0]), 1)


def test_load_torchaudio_names_why_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchaudio", None)
    module, why = load_torchaudio()
    assert module is None and why == "torchaudio is blocked (sys.modules['torchaudio'] is None)"


def test_the_pinned_environment_has_a_working_torchaudio():
    """The torchaudio comparisons may skip on the newest stack, never in the tested set."""
    pins = dict(line.split("==") for line in (REPO_ROOT / "constraints.txt").read_text()
                .splitlines() if "==" in line and not line.startswith("#"))
    if Version(torch.__version__).base_version != pins["torch"]:
        pytest.skip(f"torch {torch.__version__} is not the pinned {pins['torch']}")
    assert torchaudio is not None, TORCHAUDIO_STATUS
    assert Version(torchaudio.__version__).base_version == pins["torchaudio"]
