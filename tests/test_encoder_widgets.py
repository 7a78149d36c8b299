import math
import time

import pytest
import torch

from course_lib.audio import downsampled_length
from course_lib.text import SAMPLE_TEXT, BPETokenizer
from course_lib.widgets import patch_explorer, tokenizer_box
from course_lib.widgets._base import iter_controls
from course_lib.widgets.mel_explorer import mel_explorer
from course_lib.widgets.patch_explorer import patch_explorer as build_patch_explorer
from course_lib.widgets.tokenizer_box import tokenizer_box as build_tokenizer_box


def _chirp(seconds=1.0, sample_rate=16000):
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return 0.5 * torch.sin(2 * math.pi * (200 + 1000 * t) * t)


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 224, 224, generator=torch.Generator().manual_seed(0))


def test_patch_explorer_reads_out_the_token_count(image):
    root = build_patch_explorer(image)
    assert "196 patch tokens" in root.readout.value and "CLS = 197" in root.readout.value
    root.slider.value = 32
    assert "49 patch tokens" in root.readout.value
    assert root.figure.layout.title.text.endswith("49 tokens")
    lines_x = [v for v in root.figure.data[1].x if v is not None]
    assert max(lines_x) == pytest.approx(224 - 0.5)  # grid reaches the far edge
    assert len(root.figure.data[2].x) == 0  # nothing left uncovered


def test_patch_explorer_shades_the_cropped_remainder(image):
    root = build_patch_explorer(image)
    root.slider.value = 24  # 9 x 24 = 216: 8 px per side are not covered
    assert "81 patch tokens" in root.readout.value and "last 8 px" in root.readout.value
    # Two rectangles: x in [216, 224] over the full height, y in [216, 224] over the full width
    # (pixel edges sit half a pixel before the pixel centres).
    assert {v for v in root.figure.data[2].x if v is not None} == {215.5, 223.5, -0.5}
    assert {v for v in root.figure.data[2].y if v is not None} == {-0.5, 223.5, 215.5}
    assert max(v for v in root.figure.data[1].x if v is not None) == pytest.approx(216 - 0.5)


def test_patch_explorer_default_uses_the_mri_slice():
    root = build_patch_explorer()
    assert len(root.figure.data[0].z) == 224


def _png_pixels(source):
    import base64
    import io

    import numpy as np
    from PIL import Image

    data = base64.b64decode(source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_mel_explorer_reads_out_frames_per_second():
    root = mel_explorer(_chirp(), 16000, label="a chirp")
    assert "100.0 frames/s" in root.readout.value and "101 frames" in root.readout.value
    assert "13 tokens" in root.readout.value
    assert _png_pixels(root.figure.data[0].source).shape == (128, 101, 3)
    root.hop.value = 80
    assert "200.0 frames/s" in root.readout.value and "201 frames" in root.readout.value
    assert f"{downsampled_length(201)} tokens" in root.readout.value  # 26
    root.n_mels.value = 40
    assert _png_pixels(root.figure.data[0].source).shape == (40, 201, 3)
    assert root.figure.data[0].dx == pytest.approx(80 / 16000)  # one frame = one hop
    assert "empty mel filters (no FFT bin inside): 0" in root.readout.value
    root.n_fft.value = 128
    root.n_mels.value = 128
    assert "125.0 Hz per FFT bin" in root.readout.value
    assert "empty mel filters (no FFT bin inside): 0" not in root.readout.value


def test_mel_explorer_image_shows_the_loudest_cell_brightest_at_its_place():
    from matplotlib import colormaps

    from course_lib.audio import log_mel_spectrogram

    root = mel_explorer(_chirp(), 16000)
    log_mel = log_mel_spectrogram(_chirp())  # (128, 101)
    band, frame = divmod(int(log_mel.argmax()), log_mel.shape[1])
    pixels = _png_pixels(root.figure.data[0].source)
    top_colour = (torch.tensor(colormaps["viridis"](1.0)[:3]) * 255).round()
    bottom_colour = (torch.tensor(colormaps["viridis"](0.0)[:3]) * 255).round()
    torch.testing.assert_close(torch.tensor(pixels[127 - band, frame]).double(),
                               top_colour.double(), rtol=0, atol=1.0)
    quietest = divmod(int(log_mel.argmin()), log_mel.shape[1])  # below the display range
    torch.testing.assert_close(torch.tensor(pixels[127 - quietest[0], quietest[1]]).double(),
                               bottom_colour.double(), rtol=0, atol=1.0)
    assert root.figure.data[1].marker.cmax == pytest.approx(float(log_mel.max()), abs=0.01)


def test_tokenizer_box_shows_tokens_ids_and_count():
    tokenizer = BPETokenizer().train([SAMPLE_TEXT] * 3 + ["a handwritten seven"] * 5, 300)
    root = build_tokenizer_box(tokenizer, text="")
    assert "0 tokens" in root.count.value
    root.text.value = "a handwritten seven"
    ids = tokenizer.encode("a handwritten seven")
    assert f"<b>{len(ids)} tokens</b> for 19 characters" in root.count.value
    for token_id in ids:
        assert f"<small>{token_id}</small>" in root.tokens.value
    root.text.value = "é"
    assert "1 characters (2 UTF-8 bytes)" in root.count.value


@pytest.mark.parametrize("module", [patch_explorer, tokenizer_box])
def test_benchmark_factories_build_and_update_fast(module):
    root = module.BENCHMARK()
    for control in iter_controls(root):
        start = time.perf_counter()
        if isinstance(control.value, str):
            control.value = control.value + " more text"
        else:
            control.value = control.value + getattr(control, "step", 1)
        elapsed = time.perf_counter() - start
        assert elapsed < 0.5  # generous: the benchmark's 50 ms budget is for a quiet machine


def test_mel_explorer_updates_fast():
    root = mel_explorer(_chirp(), 16000)
    root.hop.value = 100  # warm the transform cache for this setting
    root.hop.value = 160
    start = time.perf_counter()
    root.hop.value = 100
    assert time.perf_counter() - start < 0.5
