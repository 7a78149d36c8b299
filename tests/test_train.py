"""Tests for the course's one training loop: devices, callbacks, curves, progress, parameters."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from course_lib.fusion import EarlyFusion, train_fusion  # noqa: E402
from course_lib.train import (  # noqa: E402
    Callback,
    History,
    ProgressBar,
    TrainState,
    count_parameters,
    model_device,
    plot_learning_curves,
    train,
)


class _Stop(Exception):
    """Raised by a loss function once it has seen where its batch lives."""


def _toy(seed: int = 0, n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 4, generator=generator)
    labels = (inputs[:, 0] + inputs[:, 1] > 0).long()
    return inputs, labels


def test_train_moves_model_and_every_batch_to_the_device():
    model = nn.Linear(4, 2)
    inputs, labels = _toy()
    seen = []

    def loss_of_batch(batch):
        seen.append([t.device.type for t in batch] + [model_device(model).type])
        raise _Stop

    with pytest.raises(_Stop):
        train(model, loss_of_batch, [inputs, labels], epochs=1, device="meta", progress=False)
    assert seen == [["meta", "meta", "meta"]]
    assert all(p.device.type == "meta" for p in model.parameters())
    assert inputs.device.type == "cpu"  # the caller's tensors stay where they were


def test_train_fusion_moves_model_and_batches_to_the_device():
    model = EarlyFusion({"image": 3, "audio": 5}, 2)
    original_forward = model.forward
    seen = []

    def spy(features):
        seen.append({name: value.device.type for name, value in features.items()})
        seen.append({"weights": model_device(model).type})
        raise _Stop
        return original_forward(features)  # pragma: no cover

    model.forward = spy
    tokens = {"image": torch.randn(8, 1, 3), "audio": torch.randn(8, 1, 5)}
    with pytest.raises(_Stop):
        train_fusion(model, tokens, torch.zeros(8, dtype=torch.long), epochs=1, device="meta",
                     progress=False)
    assert seen == [{"image": "meta", "audio": "meta"}, {"weights": "meta"}]


def test_train_without_device_keeps_the_model_where_it_is():
    model = nn.Linear(4, 2)
    inputs, labels = _toy()
    train(model, lambda b: F.cross_entropy(model(b[0]), b[1]), [inputs, labels], epochs=1,
          progress=False)
    assert model_device(model).type == "cpu"


def test_train_learns_and_records_per_epoch_curves():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    inputs, labels = _toy()
    valid_inputs, valid_labels = _toy(seed=1)

    def validate(trained):
        logits = trained(valid_inputs)
        assert not torch.is_grad_enabled() and not trained.training
        return {"validation loss": F.cross_entropy(logits, valid_labels).item(),
                "validation accuracy": (logits.argmax(1) == valid_labels).float().mean().item()}

    history = train(model, lambda b: F.cross_entropy(model(b[0]), b[1]), [inputs, labels],
                    epochs=12, batch_size=32, lr=5e-2, validate=validate, progress=False)
    assert len(history.losses) == 12 * 3
    assert list(history.epochs) == ["train loss", "validation loss", "validation accuracy"]
    assert all(len(curve) == 12 for curve in history.epochs.values())
    # the epoch's train loss is the mean of its three steps
    assert history.epochs["train loss"][0] == pytest.approx(sum(history.losses[:3]) / 3)
    assert history.epochs["validation loss"][-1] < history.epochs["validation loss"][0]
    assert history.epochs["validation accuracy"][-1] > 0.85
    assert history.seconds > 0 and not model.training


def test_callbacks_see_every_step_and_epoch_in_order():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, state: TrainState) -> None:
            events.append(("begin", state.epochs, state.steps_per_epoch))

        def on_step_end(self, state: TrainState) -> None:
            events.append(("step", state.step))

        def on_epoch_end(self, state: TrainState) -> None:
            events.append(("epoch", state.epoch, len(state.history.epochs["train loss"])))

        def on_train_end(self, state: TrainState) -> None:
            events.append(("end", state.step))

    model = nn.Linear(4, 2)
    inputs, labels = _toy(n=10)
    starts = []
    train(model, lambda b: F.cross_entropy(model(b[0]), b[1]), [inputs, labels], epochs=2,
          batch_size=4, callbacks=[Recorder()], progress=False, on_epoch=starts.append)
    assert events == [("begin", 2, 3), ("step", 1), ("step", 2), ("step", 3), ("epoch", 1, 1),
                      ("step", 4), ("step", 5), ("step", 6), ("epoch", 2, 2), ("end", 6)]
    assert starts == [0, 1]


def test_on_step_hook_still_works():
    model = nn.Linear(4, 2)
    inputs, labels = _toy(n=8)
    history = train(model, lambda b: F.cross_entropy(model(b[0]), b[1]), [inputs, labels],
                    epochs=3, batch_size=4, progress=False,
                    on_step=lambda h: h.log("steps so far", len(h.losses)))
    assert history.logs["steps so far"] == [1, 2, 3, 4, 5, 6]


def test_progress_bar_prints_its_final_state_outside_a_notebook(capsys):
    model = nn.Linear(4, 2)
    inputs, labels = _toy(n=8)
    train(model, lambda b: F.cross_entropy(model(b[0]), b[1]), [inputs, labels], epochs=3,
          batch_size=4)
    line = capsys.readouterr().out.strip()
    assert line.startswith("training: 3/3 epochs, 6 steps, ") and "train loss" in line
    assert "\n" not in line


def test_progress_bar_text_names_the_latest_metrics():
    history = History(losses=[1.0, 0.5], epochs={"train loss": [0.75], "validation accuracy":
                                                 [0.8125]})
    state = TrainState(nn.Linear(1, 1), history, epochs=4, steps_per_epoch=2, epoch=1, step=2)
    text = ProgressBar("fit").text(state)
    assert text.startswith("fit: 1/4 epochs, 2 steps, ")
    assert text.endswith("train loss 0.750, validation accuracy 0.812")


def test_train_rejects_bad_input():
    model = nn.Linear(4, 2)
    inputs, labels = _toy(n=8)

    def loss(b):
        return F.cross_entropy(model(b[0]), b[1])

    with pytest.raises(ValueError, match="epochs"):
        train(model, loss, [inputs, labels], epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        train(model, loss, [inputs, labels], epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="first dimension"):
        train(model, loss, [inputs, labels[:4]], epochs=1)
    frozen = nn.Linear(4, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        train(frozen, loss, [inputs, labels], epochs=1)
    with pytest.raises(FloatingPointError, match="step 0"):
        train(model, lambda b: torch.tensor(float("nan"), requires_grad=True), [inputs, labels],
              epochs=1, progress=False)


def test_count_parameters_by_layer_arithmetic_and_on_meta():
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    assert count_parameters(model) == (10 * 8 + 8) + (8 * 3 + 3)
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 8 * 3 + 3
    with torch.device("meta"):
        big = nn.Linear(4096, 4096)
    assert count_parameters(big) == 4096 * 4096 + 4096
    shared = nn.Linear(5, 5)
    assert count_parameters(nn.Sequential(shared, shared)) == 30  # shared weights once
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        count_parameters("not a model")


def test_plot_learning_curves_draws_each_seed_and_the_mean():
    runs = [History(epochs={"train loss": [1.0, 0.5], "validation loss": [1.2, 0.9]}),
            History(epochs={"train loss": [0.8, 0.3], "validation loss": [1.0, 0.7]})]
    figure, ax = plt.subplots()
    plot_learning_curves(ax, runs, ("train loss", "validation loss"), title="t", ylabel="loss")
    lines = ax.get_lines()
    assert len(lines) == 6  # two seeds + one mean, per metric
    assert list(lines[2].get_ydata()) == pytest.approx([0.9, 0.4])
    assert ax.get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="accuracy"):
        plot_learning_curves(ax, runs, ("accuracy",))
    with pytest.raises(ValueError, match="histories"):
        plot_learning_curves(ax, [])
    plt.close(figure)
