"""Rules on the code of the chapters (masters and student copies), checked on their sources.

* No model class is defined inside chapters 01-04: they import their models from
  ``course_lib`` (one source of truth; chapter 04 trains chapter 02's encoders).
* One audio front-end: audio features come from ``course_lib.audio.LogMelFrontEnd``. A direct
  ``torch.stft(`` or torchaudio ``MelSpectrogram(`` call is allowed only in the chapters that
  teach what those calls compute (:data:`STFT_TEACHING_CHAPTERS`, keyed by the part of a
  chapter that does, e.g. ``02b``), and the chapters that compute features with the front-end
  do not call ``log_mel_spectrogram`` themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (REPO_ROOT / "notebooks" / "student").glob("*.ipynb"))

MODEL_CLASS = (re.compile(r"class .*nn\.Module"), re.compile(r"class .*\(nn\."))
NO_MODEL_CHAPTERS = ("01", "02", "03", "04")

SPECTROGRAM_CALL = re.compile(r"(MelSpectrogram\(|torch\.stft\()")
# Chapters (or parts of one: the prefix before the first "_" of the file name) that teach the
# short-time Fourier transform itself, so they call it on the page:
STFT_TEACHING_CHAPTERS = {
    "01": "draws the (linear) spectrogram of a waveform as a tensor: windows, bins, 101 frames",
    "02b": "builds the log-mel front-end step by step (STFT, power, mel filters, log) and "
          "compares it with course_lib (the tests compare that with torchaudio)",
    "07": "counts frames from first principles: centre padding of torch.stft",
}
# Chapters, or parts of a chapter ("04a"), whose audio features come from LogMelFrontEnd (they
# state its settings in one line). Both parts of chapter 04 compute them: 04a meets the pairs and
# their features, 04b recomputes them to train on.
FRONT_END_CHAPTERS = ("01", "04a", "04b", "05", "06", "07", "08")


def _chapter(path: Path) -> str:
    return path.name[:2]


def _part(path: Path) -> str:
    """The chapter, or the part of a split chapter: ``04a`` for ``04a_contrastive_loss.ipynb``."""
    return path.name.split("_")[0]


def code_sources(path: Path) -> list[tuple[int, str]]:
    """(cell index, source) of every code cell of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(index, "".join(cell["source"]) if isinstance(cell["source"], list)
             else cell["source"]) for index, cell in enumerate(cells)
            if cell["cell_type"] == "code"]


def model_classes(path: Path) -> list[str]:
    """``cell N: line`` for each line of a code cell that defines an nn.Module subclass."""
    return [f"cell {index}: {line.strip()}" for index, source in code_sources(path)
            for line in source.splitlines()
            if any(pattern.search(line) for pattern in MODEL_CLASS)]


def spectrogram_calls(path: Path) -> list[str]:
    """``cell N: line`` for each direct torch.stft( or MelSpectrogram( call."""
    return [f"cell {index}: {line.strip()}" for index, source in code_sources(path)
            for line in source.splitlines() if SPECTROGRAM_CALL.search(line)
            and not line.lstrip().startswith("#")]


def _ids(paths: list[Path]) -> list:
    return [pytest.param(path, id=str(path.relative_to(REPO_ROOT / "notebooks")))
            for path in paths]


def test_the_rules_see_every_chapter_and_its_student_copy():
    masters = {_chapter(p) for p in NOTEBOOKS if p.parent.name == "notebooks"}
    students = {_chapter(p) for p in NOTEBOOKS if p.parent.name == "student"}
    assert set(NO_MODEL_CHAPTERS) <= masters and set(NO_MODEL_CHAPTERS) <= students
    parts = {_part(p) for p in NOTEBOOKS if p.parent.name == "notebooks"}
    assert set(FRONT_END_CHAPTERS) <= parts, "a front-end rule names no chapter"
    assert set(STFT_TEACHING_CHAPTERS) <= parts, "an exemption names no chapter"


@pytest.mark.parametrize("path", _ids([p for p in NOTEBOOKS
                                       if _chapter(p) in NO_MODEL_CHAPTERS]))
def test_no_model_class_is_defined_in_chapters_01_to_04(path):
    assert model_classes(path) == [], "define models in course_lib and import them"


@pytest.mark.parametrize("path", _ids(NOTEBOOKS))
def test_no_direct_stft_or_mel_spectrogram_outside_the_chapters_that_teach_it(path):
    if _part(path) in STFT_TEACHING_CHAPTERS:
        pytest.skip(f"chapter {_part(path)} {STFT_TEACHING_CHAPTERS[_part(path)]}")
    assert spectrogram_calls(path) == [], "use course_lib.audio.LogMelFrontEnd"


@pytest.mark.parametrize("path", _ids([p for p in NOTEBOOKS
                                       if _part(p) in FRONT_END_CHAPTERS]))
def test_front_end_chapters_use_audio_front_end_and_not_log_mel_directly(path):
    sources = "\n".join(source for _, source in code_sources(path))
    direct = [line.strip() for line in sources.splitlines()
              if "log_mel_spectrogram(" in line and not line.lstrip().startswith("#")]
    assert direct == [], "compute features with LogMelFrontEnd (or the tokenizer built on it)"
    if path.parent.name == "notebooks":
        assert "LogMelFrontEnd" in sources or "DigitTokenizer" in sources
        assert ".describe()" in sources, "state the front-end's settings in one printed line"


def _notebook(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "04_x.ipynb"
    path.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "class Tower(nn.Module) in prose"},
        {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
         "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize("source", [
    "class Tower(nn.Module):\n    pass", "class Tower(torch.nn.Module):\n    pass",
    "import torch\nclass Block(nn.Sequential):\n    pass",
    "class Tower(nn.TransformerEncoderLayer): ..."])
def test_the_model_rule_flags_a_model_class_in_a_code_cell(tmp_path, source):
    assert len(model_classes(_notebook(tmp_path, source))) == 1


def test_the_model_rule_ignores_prose_and_plain_classes(tmp_path):
    assert model_classes(_notebook(tmp_path, "class Settings:\n    pass")) == []


@pytest.mark.parametrize("source", [
    "spectrum = torch.stft(x, 400)", "mel = torchaudio.transforms.MelSpectrogram(16000)(x)",
    "from torchaudio.transforms import MelSpectrogram\nm = MelSpectrogram(sample_rate=8000)"])
def test_the_audio_rule_flags_direct_calls(tmp_path, source):
    assert len(spectrogram_calls(_notebook(tmp_path, source))) == 1


def test_the_audio_rule_ignores_the_front_end_and_comments(tmp_path):
    source = "# torch.stft(x) is what the front-end calls\nmels = front_end(waveforms)"
    assert spectrogram_calls(_notebook(tmp_path, source)) == []
