"""Robustness of course_lib.train: one tensor is not a sequence of aligned tensors, sizes and
hooks are checked by name, float64/numpy data trains like float32, batch 1 works."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_robustness_support import (  # noqa: E402
    assert_rejects,
    bad_int,
    covers,
    not_a_number,
    not_a_tensor,
)
from torch import nn  # noqa: E402

from course_lib.train import (  # noqa: E402
    Callback,
    History,
    ProgressBar,
    TrainState,
    accuracy,
    count_parameters,
    iterate_minibatches,
    model_device,
    plot_learning_curves,
    train,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def _loss(model: nn.Module):
    return lambda batch: nn.functional.cross_entropy(model(batch[0]), batch[1])


def _data(n: int = 8) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(n, 3, generator=generator), torch.arange(n) % 2]


# ----------------------------------------------------------------------------- the example
@covers(iterate_minibatches, train)
def test_one_tensor_is_not_read_as_a_sequence_of_aligned_tensors():
    # Before: the rows of the (4, 3) tensor were taken as four aligned "tensors" of length 3.
    features = torch.randn(4, 3)
    error = assert_rejects(iterate_minibatches, "tensors", features, 2)
    assert "[tensors]" in str(error)  # says how to pass a single tensor
    model = _model()
    assert_rejects(train, "tensors", model, lambda batch: model(batch[0]).sum(), features,
                   epochs=1, progress=False)
    assert_rejects(train, "tensors", model, _loss(model), np.zeros((4, 3)), epochs=1,
                   progress=False)
    assert [len(batch) for batch in iterate_minibatches([features], 2)] == [1, 1]


@covers(iterate_minibatches)
@given(st.one_of(not_a_tensor().filter(lambda v: not isinstance(v, list)),
                 st.just([]), st.just([torch.zeros(3), torch.zeros(4)]),
                 st.just([torch.tensor(1.0)]), st.just(["abc"])))
def test_iterate_minibatches_refuses_what_is_not_aligned_tensors(tensors):
    assert_rejects(iterate_minibatches, "tensors", tensors, 2)


@covers(iterate_minibatches)
@given(bad_int(1))
def test_iterate_minibatches_refuses_a_bad_batch_size(batch_size):
    assert_rejects(iterate_minibatches, "batch_size", _data(), batch_size)


@covers(iterate_minibatches)
@given(st.integers(0, 9), st.integers(1, 12), st.booleans())
def test_iterate_minibatches_partitions_the_rows(n, batch_size, as_numpy):
    data = [t.numpy() if as_numpy else t for t in _data(n)]
    batches = iterate_minibatches(data, batch_size, torch.Generator().manual_seed(1))
    assert [len(b[0]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    rows = torch.cat([b[1] for b in batches]) if batches else torch.zeros(0, dtype=torch.long)
    assert sorted(rows.tolist()) == sorted(_data(n)[1].tolist())


# ----------------------------------------------------------------------------- train
@covers(train)
@given(st.sampled_from(["epochs", "batch_size", "seed", "lr", "weight_decay", "progress"]),
       st.data())
def test_train_refuses_bad_settings_by_name(argument, data):
    bad = {"epochs": bad_int(1), "batch_size": bad_int(1), "seed": bad_int(0),
           "lr": st.one_of(not_a_number(), st.floats(-1, 0)),
           "weight_decay": st.one_of(not_a_number(), st.floats(-9, -0.01)),
           "progress": st.one_of(st.none(), st.integers(), st.text(max_size=2))}[argument]
    model = _model()
    settings = {"epochs": 1, "progress": False, argument: data.draw(bad)}
    assert_rejects(train, argument, model, _loss(model), _data(), **settings)


@covers(train)
@given(st.sampled_from(["model", "loss_of_batch", "on_step", "validate", "on_epoch",
                        "callbacks"]))
def test_train_refuses_hooks_of_the_wrong_kind(argument):
    model = _model()
    arguments = {"model": model, "loss_of_batch": _loss(model), "tensors": _data(),
                 "epochs": 1, "progress": False}
    arguments[argument] = {"callbacks": [print], "model": "linear"}.get(argument, 3)
    assert_rejects(train, argument.rstrip("s") if argument == "callbacks" else argument,
                   **arguments)


@covers(train)
def test_train_refuses_a_size_that_would_loop_for_ever():
    model = _model()
    assert_rejects(train, "epochs", model, _loss(model), _data(), epochs=10**9, progress=False)


@covers(train)
@given(st.sampled_from(["float32", "float64", "numpy"]), st.integers(1, 3))
def test_train_takes_float64_and_numpy_data_like_float32(kind, batch_size):
    features, labels = _data(4)
    if kind == "float64":
        features = features.double()
    results = []
    for data in ([_data(4)[0], labels], [features, labels]):
        if kind == "numpy" and data[0] is features:
            data = [features.numpy(), labels.numpy()]
        model = _model()
        history = train(model, lambda b, m=model: nn.functional.cross_entropy(
            m(torch.as_tensor(b[0]).float()), torch.as_tensor(b[1])), data, epochs=2,
            batch_size=batch_size, progress=False)
        results.append(history.losses)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


# ----------------------------------------------------------------------------- small helpers
@covers(accuracy)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(3)), st.just(torch.zeros(2, 2, 2))))
def test_accuracy_refuses_what_is_not_logits(logits):
    assert_rejects(accuracy, "logits", logits, torch.zeros(3, dtype=torch.long))


@covers(accuracy)
@given(st.integers(1, 6), st.integers(2, 4), st.integers(0, 99))
def test_accuracy_is_the_fraction_of_matching_arg_maxes(n, c, seed):
    generator = torch.Generator().manual_seed(seed)
    logits, labels = torch.randn(n, c, generator=generator), torch.randint(c, (n,))
    expected = sum(int(row.argmax()) == int(y) for row, y in zip(logits, labels)) / n
    assert accuracy(logits.double(), labels) == pytest.approx(expected)
    assert_rejects(accuracy, "labels", logits, labels[:-1] if n > 1 else labels[:0])
    assert_rejects(accuracy, "logits", logits[:0], labels[:0])  # no rows: undefined


@covers(model_device, count_parameters)
@given(st.one_of(not_a_tensor(), st.just(torch.zeros(2))))
def test_model_helpers_refuse_what_is_not_a_module(model):
    assert_rejects(model_device, "model", model)
    assert_rejects(count_parameters, "model", model)


@covers(model_device, count_parameters)
@given(st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_count_parameters_is_the_hand_count(d_in, d_out, freeze_bias):
    layer = nn.Linear(d_in, d_out)
    layer.bias.requires_grad_(not freeze_bias)
    assert count_parameters(layer) == d_in * d_out + d_out
    assert count_parameters(layer, trainable_only=True) == d_in * d_out + (0 if freeze_bias
                                                                           else d_out)
    assert model_device(layer) == torch.device("cpu")
    assert_rejects(count_parameters, "trainable_only", layer, trainable_only="yes")


@covers(History, History.log, History.log_epoch)
@given(st.one_of(st.text(max_size=3), st.none(), st.booleans(), st.just([1.0]),
                 st.just(torch.zeros(2)), st.complex_numbers(max_magnitude=2)))
def test_history_logs_only_real_numbers_under_a_name(value):
    history = History()
    if not isinstance(value, str):
        assert_rejects(history.log, "value", "loss", value)
        assert_rejects(history.log_epoch, "value", "loss", value)
    assert_rejects(history.log, "name", 3, 1.0)
    assert_rejects(history.log_epoch, "name", None, 1.0)
    history.log("loss", np.float32(0.5))
    history.log_epoch("acc", torch.tensor(0.25))
    assert history.logs == {"loss": [0.5]} and history.epochs == {"acc": [0.25]}


@covers(TrainState, Callback, Callback.on_train_begin, Callback.on_step_end,
        Callback.on_epoch_end, Callback.on_train_end)
@given(st.sampled_from(["model", "history", "epochs", "steps_per_epoch", "epoch", "step",
                        "started"]), st.data())
def test_train_state_refuses_bad_fields_and_callbacks_take_a_state(field, data):
    fields = {"model": _model(), "history": History(), "epochs": 2, "steps_per_epoch": 3}
    fields[field] = data.draw({"model": st.just("net"), "history": st.just({}),
                               "started": not_a_number(), "epoch": bad_int(0, 2)}.get(
                                   field, bad_int(0)))
    if field == "epochs" and isinstance(fields[field], int) and fields[field] > 0:
        fields[field] = 0
    assert_rejects(lambda: TrainState(**fields), field)
    state = TrainState(_model(), History(), 2, 3)
    hooks = Callback()
    for hook in (hooks.on_train_begin, hooks.on_step_end, hooks.on_epoch_end,
                 hooks.on_train_end):
        assert hook(state) is None


@covers(ProgressBar, ProgressBar.text, ProgressBar.on_train_begin, ProgressBar.on_step_end,
        ProgressBar.on_epoch_end, ProgressBar.on_train_end)
@given(st.one_of(st.none(), st.text(max_size=2), st.integers(), st.just(History())))
def test_progress_bar_refuses_what_is_not_a_state(state):
    bar = ProgressBar(print_summary=False)
    for method in (bar.text, bar.on_train_begin, bar.on_step_end, bar.on_epoch_end,
                   bar.on_train_end):
        assert_rejects(method, "state", state)
    assert_rejects(ProgressBar, "description", description=3)
    assert_rejects(ProgressBar, "every_s", every_s=-1.0)
    assert_rejects(ProgressBar, "print_summary", print_summary="no")
    good = TrainState(_model(), History(losses=[1.5]), epochs=2, steps_per_epoch=1, epoch=1,
                      step=1)
    assert bar.text(good).startswith("training: 1/2 epochs, 1 steps")


@covers(plot_learning_curves)
@given(st.sampled_from(["histories", "metrics", "labels", "ax"]))
def test_plot_learning_curves_refuses_bad_arguments_by_name(argument):
    history = History(epochs={"train loss": [1.0, 0.5]})
    figure, ax = plt.subplots()
    try:
        arguments = {"ax": ax, "histories": [history], "metrics": ["train loss"]}
        arguments[argument] = {"histories": [history, "run"], "metrics": "train loss",
                               "labels": ["a", "b"], "ax": None}[argument]
        assert_rejects(plot_learning_curves, argument, **arguments)
        assert plot_learning_curves(ax, history) is ax
        assert list(ax.lines[0].get_ydata()) == [1.0, 0.5]
    finally:
        plt.close(figure)
