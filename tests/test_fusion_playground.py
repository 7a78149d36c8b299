"""The fusion playground view, headless: controls change the bars to the right accuracies."""

from __future__ import annotations

import time

import pytest
from test_fusion_tools import tiny_playground

from course_lib.fusion import playground_accuracies
from course_lib.widgets._base import iter_controls
from course_lib.widgets.fusion_playground import BENCHMARK, fusion_playground


def bars(root) -> list[float]:
    return list(root.figure.data[0].y)


def test_sliders_and_toggles_show_each_models_accuracy_at_that_setting():
    models, data = tiny_playground()
    root = fusion_playground(models, data, image_noise=0.0, snr_db=6.0)
    names = list(root.figure.data[0].x)
    assert names == ["early", "late", "hybrid"]
    expected = playground_accuracies(models, data, 0.0, 6.0)
    assert bars(root) == pytest.approx([expected[name] for name in names])

    root.image_noise.value = 0.5
    root.snr_db.value = -6.0
    expected = playground_accuracies(models, data, 0.5, -6.0)
    assert bars(root) == pytest.approx([expected[name] for name in names])
    assert "image noise 0.5, SNR -6.0 dB" in root.figure.layout.title.text

    root.drop_audio.value = True
    expected = playground_accuracies(models, data, 0.5, -6.0, ("audio",))
    assert bars(root) == pytest.approx([expected[name] for name in names])
    assert "without audio" in root.readout.value
    assert list(root.figure.data[0].text) == [f"{expected[name]:.1%}" for name in names]


def test_dropping_both_modalities_explains_instead_of_failing():
    models, data = tiny_playground()
    root = fusion_playground(models, data)
    root.drop_image.value = True
    before = bars(root)
    root.drop_audio.value = True
    assert "Keep at least one modality" in root.readout.value
    assert bars(root) == before  # the bars keep the last valid setting
    root.drop_image.value = False
    expected = playground_accuracies(models, data, 0.0, -6.0, ("audio",))
    assert bars(root) == pytest.approx([expected[name] for name in root.figure.data[0].x])
    assert "without audio" in root.readout.value


def test_benchmark_builds_and_every_control_updates_within_budget():
    root = BENCHMARK()
    controls = list(iter_controls(root))
    assert len(controls) == 4
    timings = []
    for control in controls:
        start_value = control.value
        values = [not start_value] if isinstance(start_value, bool) else list(control.options)
        for value in [*values, start_value]:
            start = time.perf_counter()
            control.value = value
            timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.05


def test_a_precomputed_table_is_what_the_bars_show():
    models, data = tiny_playground()
    from course_lib.fusion import playground_table

    table = playground_table(models, data)
    key = next(iter(table))
    table = {setting: {name: 0.25 for name in models} for setting in table}  # a known table
    root = fusion_playground(models, data, image_noise=key[0], snr_db=key[1], table=table)
    assert bars(root) == pytest.approx([0.25, 0.25, 0.25])


def test_a_table_for_other_models_is_refused():
    models, data = tiny_playground()
    with pytest.raises(ValueError, match="table"):
        fusion_playground(models, data, table={(0.0, 6.0, ()): {"early": 0.5}})
