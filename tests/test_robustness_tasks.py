"""Robustness of the chapters' task helpers: chapter 03's mosaic model (attention_task),
chapter 05's measuring tools (fusion_tools) and chapter 09's benchmark. Bad arguments are
refused by name before any training; float64, numpy and batch-1 inputs work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_FLOAT,
    assert_rejects,
    bad_int,
    covers,
    float_tensors,
    not_a_number,
    not_a_tensor,
    tensor_of_dtype,
)
from torch import nn

from course_lib import benchmark
from course_lib.attention_task import (
    MosaicEvaluation,
    MosaicModelConfig,
    MosaicQuestionModel,
    evaluate_mosaic_model,
    train_mosaic_model,
)
from course_lib.benchmark import (
    DigitTask,
    DualEncoderClassifier,
    build_design,
    design_loss,
    digit_logits,
    evaluate_design,
    load_digit_task,
    pretrain_digit_lm,
    train_design,
)
from course_lib.benchmark_costs import design_cost
from course_lib.data.mosaic import make_digit_mosaics
from course_lib.fusion import EarlyFusion, HybridFusion, LateFusion
from course_lib.fusion_tools import (
    DigitTokenizer,
    PlaygroundData,
    Standardizer,
    align_by_timestamps,
    audio_frame_tokens,
    build_playground_data,
    flatten_tokens,
    fusion_accuracy,
    fusion_correct,
    fusion_loss,
    linear_weight_count,
    modality_removal,
    modality_shuffle,
    model_inputs,
    playground_accuracies,
    playground_table,
    quantize_linear_weights,
    train_fusion,
)

NOT_A_MODULE = st.one_of(not_a_tensor(), st.just(torch.ones(2)), st.just(lambda x: x))
BAD_DEVICE = st.sampled_from(["gpu", "cuda:x", "", 3, ["cpu"]])


@pytest.fixture(scope="module")
def mosaics():
    return make_digit_mosaics("val", 4, seed=0)


# ----------------------------------------------------------------------------- attention_task
@covers(MosaicModelConfig, MosaicQuestionModel)
@given(st.sampled_from(["dim", "num_heads", "hidden"]), st.data())
def test_mosaic_model_sizes_are_checked_by_name(field, data):
    assert_rejects(MosaicModelConfig, field, **{field: data.draw(
        st.one_of(bad_int(1, 4096), st.just(10**9)))})
    assert_rejects(MosaicModelConfig, "num_heads", dim=30, num_heads=4)
    assert_rejects(MosaicQuestionModel, "config", {"dim": 32})


@covers(MosaicQuestionModel.tokens, MosaicQuestionModel.forward)
@given(st.sampled_from(["tiles", "questions", "tile_mask"]), st.data())
def test_mosaic_model_refuses_bad_inputs_before_any_matmul(argument, data):
    torch.manual_seed(0)
    model = MosaicQuestionModel()
    arguments = {"tiles": torch.rand(2, 4, 8, 8), "questions": torch.tensor([0, 3]),
                 "tile_mask": None}
    arguments[argument] = data.draw({
        "tiles": st.one_of(not_a_tensor(), tensor_of_dtype((2, 4, 8, 8), NOT_FLOAT),
                           st.just(torch.rand(2, 4, 64)), st.just(torch.rand(3, 4, 8, 8)),
                           st.just(torch.full((2, 4, 8, 8), float("nan")))),
        "questions": st.one_of(not_a_tensor(), st.just(torch.tensor([0.0, 1.0])),
                               st.just(torch.tensor([0, 4])), st.just(torch.tensor([0]))),
        "tile_mask": st.one_of(st.just(torch.ones(2, 4)), st.just(torch.ones(2, 5).bool()),
                               st.just("all"))}[argument])
    assert_rejects(model, argument, **arguments)
    if argument != "tile_mask":
        assert_rejects(model.tokens, argument, arguments["tiles"], arguments["questions"])


@covers(MosaicQuestionModel.forward, MosaicQuestionModel.tokens, evaluate_mosaic_model,
        MosaicEvaluation)
@given(st.integers(1, 3), st.data())
def test_mosaic_model_takes_float64_numpy_and_non_contiguous_tiles(batch, data):
    torch.manual_seed(0)
    model = MosaicQuestionModel().eval()
    tiles = data.draw(float_tensors((batch, 4, 8, 8)))
    questions = torch.arange(batch) % 4
    expected = model(torch.as_tensor(tiles).float().contiguous(), questions)
    torch.testing.assert_close(model(tiles, questions.int()), expected, rtol=1e-4, atol=1e-5)
    assert model.question_attention.shape == (batch, 5)


@covers(evaluate_mosaic_model, train_mosaic_model)
@given(st.sampled_from(["model", "data", "train_data", "monitor_data", "device"]), st.data())
def test_mosaic_training_and_evaluation_check_their_arguments(mosaics, argument, data):
    torch.manual_seed(0)
    model = MosaicQuestionModel()
    if argument == "device":
        assert_rejects(train_mosaic_model, "device", model, mosaics, mosaics, epochs=1,
                       device=data.draw(BAD_DEVICE))
        return
    bad = data.draw(st.one_of(NOT_A_MODULE, st.just(nn.Linear(2, 2))) if argument == "model"
                    else st.sampled_from([None, "val", mosaics.tiles, mosaics.subset
                                          if hasattr(mosaics, "subset") else []]))
    if argument in ("model", "data"):
        arguments = {"model": model, "data": mosaics, argument: bad}
        assert_rejects(evaluate_mosaic_model, argument, **arguments)
    if argument != "data":
        arguments = {"model": model, "train_data": mosaics, "monitor_data": mosaics,
                     argument: bad}
        assert_rejects(train_mosaic_model, argument, **arguments, epochs=1)
    result = evaluate_mosaic_model(model, mosaics)
    assert 0 <= result.accuracy <= 1 and result.attention.shape == (len(mosaics), 5)


# ----------------------------------------------------------------------------- fusion_tools
@pytest.fixture(scope="module")
def tokenizer():
    generator = torch.Generator().manual_seed(0)
    return DigitTokenizer(torch.rand(6, 1, 8, 8, generator=generator),
                          torch.randn(6, 16000, generator=generator) * 0.1)


@covers(audio_frame_tokens)
@given(st.sampled_from(["waveforms", "sample_rate", "n_mels", "num_tokens"]), st.data())
def test_audio_frame_tokens_checks_every_argument_before_the_spectrogram(argument, data):
    arguments = {"waveforms": torch.randn(2, 4000), "sample_rate": 16000, "n_mels": 8,
                 "num_tokens": 2}
    arguments[argument] = data.draw({
        "waveforms": st.one_of(not_a_tensor(), tensor_of_dtype((2, 4000), NOT_FLOAT),
                               st.just(torch.full((2, 4000), float("nan")))),
        "sample_rate": bad_int(1, 192_000), "n_mels": bad_int(1, 512),
        "num_tokens": st.one_of(bad_int(1, 10_000), st.just(10**9))}[argument])
    assert_rejects(audio_frame_tokens, argument, **arguments)


@covers(Standardizer, DigitTokenizer, DigitTokenizer.image_tokens, DigitTokenizer.audio_tokens)
@given(st.sampled_from(["training_tokens", "tokens", "train_images", "images", "standardize",
                        "num_audio_tokens", "n_mels"]), st.data())
def test_standardizer_and_tokenizer_refuse_bad_inputs_by_name(tokenizer, argument, data):
    if argument == "training_tokens":
        assert_rejects(Standardizer, argument, data.draw(st.one_of(
            not_a_tensor(), st.just(torch.ones(1, 3)), st.just(torch.tensor([[float("nan")]] * 3)),
            tensor_of_dtype((4, 3), NOT_FLOAT))))
    elif argument == "tokens":
        assert_rejects(Standardizer(torch.randn(4, 3)), argument, data.draw(st.one_of(
            not_a_tensor(), st.just(torch.ones(2, 5)), tensor_of_dtype((2, 3), NOT_FLOAT))))
    elif argument == "train_images":
        assert_rejects(DigitTokenizer, argument, data.draw(st.sampled_from(
            [None, torch.rand(6, 64), torch.ones(6, 1, 8, 8, dtype=torch.uint8)])),
            torch.randn(6, 16000))
    elif argument == "images":
        assert_rejects(tokenizer.image_tokens, argument, data.draw(st.sampled_from(
            [None, torch.rand(6, 64), torch.rand(2, 1, 4, 4), [[0.5]]])))
    elif argument == "standardize":
        assert_rejects(tokenizer.audio_tokens, argument, torch.randn(1, 16000), "yes")
    else:
        assert_rejects(DigitTokenizer, argument, torch.rand(6, 1, 8, 8), torch.randn(6, 16000),
                       **{argument: data.draw(st.one_of(bad_int(1, 512), st.just(10**9)))})


@covers(Standardizer, DigitTokenizer, DigitTokenizer.image_tokens)
@given(st.integers(1, 3), st.data())
def test_tokenizer_takes_float64_numpy_and_non_contiguous_images(tokenizer, batch, data):
    images = data.draw(float_tensors((batch, 1, 8, 8)))
    expected = tokenizer.image_tokens(torch.as_tensor(images).float().contiguous())
    torch.testing.assert_close(tokenizer.image_tokens(images), expected, rtol=1e-5, atol=1e-5)
    assert expected.shape == (batch, 1, 64)


@covers(flatten_tokens, align_by_timestamps, model_inputs)
@given(st.sampled_from(["features", "waveforms", "shifts", "model", "tokens"]), st.data())
def test_token_helpers_refuse_bad_inputs_by_name(argument, data):
    features = {"image": torch.ones(2, 1, 4), "audio": torch.ones(2, 3, 4)}
    if argument == "features":
        assert_rejects(flatten_tokens, argument, data.draw(st.sampled_from(
            [None, [torch.ones(2, 3)], {}, {"image": None}, {3: torch.ones(2, 3)},
             {"image": torch.ones(2, 3), "audio": torch.ones(3, 3)}, torch.ones(2, 3)])))
    elif argument in ("waveforms", "shifts"):
        arguments = {"waveforms": torch.ones(2, 10), "shifts": torch.tensor([0, 3])}
        arguments[argument] = data.draw(st.sampled_from(
            [None, [0, 1]] + ([torch.tensor([0.0, 1.0]), torch.tensor([0, 10])]
                              if argument == "shifts" else [torch.ones(2, 10).long()])))
        assert_rejects(align_by_timestamps, "shifts" if argument == "shifts" else argument,
                       **arguments)
    else:
        model = EarlyFusion({"image": 4, "audio": 12}, 3)
        arguments = {"model": model, "tokens": features}
        arguments[argument] = data.draw(NOT_A_MODULE if argument == "model"
                                        else st.sampled_from([None, [torch.ones(2, 4)], {}]))
        assert_rejects(model_inputs, argument, **arguments)
    flat = flatten_tokens({name: value.numpy() for name, value in features.items()})
    assert flat["audio"].shape == (2, 12)
    rolled = align_by_timestamps(torch.arange(10.0)[None], np.array([3]))
    assert rolled[0, 0].item() == 3.0


def _models():
    torch.manual_seed(0)
    dims = {"image": 4, "audio": 6}
    return {"early": EarlyFusion(dims, 3), "late": LateFusion(dims, 3),
            "hybrid": HybridFusion({"image": 4, "audio": 3}, 3, d_model=8, depth=1,
                                   num_heads=2)}


def _tokens(n=5):
    generator = torch.Generator().manual_seed(1)
    return ({"image": torch.randn(n, 1, 4, generator=generator),
             "audio": torch.randn(n, 2, 3, generator=generator)},
            torch.randint(0, 3, (n,), generator=generator))


EVALUATORS = (fusion_correct, fusion_accuracy, modality_removal, modality_shuffle, fusion_loss)


@covers(*EVALUATORS)
@given(st.sampled_from(EVALUATORS), st.sampled_from(["model", "features", "labels"]),
       st.data())
def test_evaluation_helpers_refuse_bad_models_features_and_labels(function, argument, data):
    model = _models()["early"]
    tokens, labels = _tokens()
    features = model_inputs(model, tokens)
    arguments = {"model": model, "features": features, "labels": labels}
    arguments[argument] = data.draw({
        "model": NOT_A_MODULE,
        "features": st.sampled_from([None, {}, [features["image"]], {"image": "pixels"},
                                     {"image": features["image"][:2],
                                      "audio": features["audio"]}]),
        "labels": st.sampled_from([None, labels.float(), labels[:, None], [0, 1, 2, 0, 1],
                                   labels[:3]])}[argument])
    if function is modality_removal and argument == "model":
        arguments["model"] = data.draw(st.just(None))
    assert_rejects(function, argument if not (argument == "model" and function in (
        modality_removal, modality_shuffle)) else "model", **arguments)


@covers(*EVALUATORS, model_inputs)
@given(st.sampled_from(["early", "late", "hybrid"]), st.sampled_from(["float64", "numpy"]))
def test_evaluation_helpers_take_float64_and_numpy_features(name, form):
    model = _models()[name]
    tokens, labels = _tokens()
    features = model_inputs(model, tokens)
    expected = fusion_correct(model, features, labels)
    given_features = {k: (v.double() if form == "float64" else v.numpy())
                      for k, v in features.items()}
    assert torch.equal(fusion_correct(model, given_features, labels), expected)
    assert fusion_accuracy(model, given_features, labels) == pytest.approx(
        expected.float().mean().item())
    assert set(modality_shuffle(model, features, labels)) == {"all", "image shuffled",
                                                              "audio shuffled"}
    assert fusion_loss(model, features, labels).dim() == 0


@covers(quantize_linear_weights, linear_weight_count)
@given(NOT_A_MODULE)
def test_compression_helpers_need_a_module(model):
    assert_rejects(quantize_linear_weights, "model", model)
    assert_rejects(linear_weight_count, "model", model)
    layer = nn.Linear(3, 2)
    assert linear_weight_count(layer) == (6, 2)
    rounded = quantize_linear_weights(layer).weight
    scale = layer.weight.abs().amax(dim=1, keepdim=True) / 127
    torch.testing.assert_close(rounded, (layer.weight / scale).round() * scale)


@covers(train_fusion)
@given(st.sampled_from(["model", "tokens", "labels", "modality_dropout_p", "seed",
                        "validation"]), st.data())
def test_train_fusion_refuses_bad_arguments_before_training(argument, data):
    tokens, labels = _tokens()
    arguments = {"model": _models()["hybrid"], "tokens": tokens, "labels": labels}
    arguments[argument] = data.draw({
        "model": st.one_of(NOT_A_MODULE, st.just(nn.Linear(2, 2))),
        "tokens": st.sampled_from([None, {}, [tokens["image"]], {"image": tokens["image"]}]),
        "labels": st.sampled_from([None, labels.float(), labels[:2]]),
        "modality_dropout_p": st.one_of(not_a_number(), st.floats(-1, -0.01), st.floats(1, 5)),
        "seed": bad_int(0),
        "validation": st.sampled_from([tokens, (tokens,), "val", 3])}[argument])
    expected = "tokens" if argument == "tokens" and isinstance(arguments["tokens"], dict) \
        and arguments["tokens"] else argument
    assert_rejects(train_fusion, expected, **arguments, epochs=1, progress=False)


@covers(PlaygroundData, PlaygroundData.tokens, playground_accuracies, playground_table,
        build_playground_data)
@given(st.sampled_from(["image_tokens", "labels", "image_noise", "dropped", "models", "data",
                        "tokenizer", "image_noise_levels", "num_examples"]), st.data())
def test_playground_helpers_check_their_arguments(tokenizer, argument, data):
    tokens, labels = _tokens()
    playground = PlaygroundData({0.0: tokens["image"]}, {10.0: tokens["audio"]}, labels)
    models = {"hybrid": _models()["hybrid"]}
    if argument in ("image_tokens", "labels"):
        fields = {"image_tokens": {0.0: tokens["image"]}, "audio_tokens": {10.0: tokens["audio"]},
                  "labels": labels}
        fields[argument] = data.draw(st.sampled_from(
            [None, {}, {0.0: tokens["image"][:2]}, {"a": tokens["image"]}] if argument ==
            "image_tokens" else [None, labels.float(), labels[:2]]))
        assert_rejects(PlaygroundData, argument, **fields)
    elif argument == "image_noise":
        assert_rejects(playground.tokens, argument, data.draw(st.sampled_from(
            [None, "0", 0.5, float("nan")])), 10.0)
    elif argument in ("dropped", "models", "data"):
        arguments = {"models": models, "data": playground, "dropped": ()}
        arguments[argument] = data.draw({
            "dropped": st.sampled_from(["image", ["image", "audio"], ["video"], None]),
            "models": st.sampled_from([None, {}, {"m": None}, [_models()["early"]]]),
            "data": st.sampled_from([None, tokens, "test"])}[argument])
        assert_rejects(playground_accuracies, argument, image_noise=0.0, snr_db=10.0,
                       **arguments)
        if argument != "dropped":
            assert_rejects(playground_table, argument, arguments["models"], arguments["data"])
    else:
        arguments = {"image_noise_levels": [0.0], "snr_levels": [10.0], "tokenizer": tokenizer}
        arguments[argument] = data.draw({
            "tokenizer": st.sampled_from([None, "tokenizer", models["hybrid"]]),
            "image_noise_levels": st.sampled_from([None, 0.5, [float("nan")], ["0"],
                                                   [0.0] * 101]),
            "num_examples": st.sampled_from([0, 10**9, 2.0, "3"])}[argument])
        assert_rejects(build_playground_data, argument, **arguments)
    table = playground_table(models, playground)
    assert table[0.0, 10.0, ()] == playground_accuracies(models, playground, 0.0, 10.0)


# ----------------------------------------------------------------------------- benchmark
@pytest.fixture(scope="module")
def task():
    generator = torch.Generator().manual_seed(0)
    return DigitTask(torch.randn(8, 1, 64, generator=generator),
                     torch.randn(8, 5, 64, generator=generator), torch.arange(8) % 10)


@covers(DigitTask, DigitTask.to, load_digit_task)
@given(st.sampled_from(["image", "audio", "labels", "device", "image_noise", "seed"]),
       st.data())
def test_digit_tasks_check_their_tensors_and_settings(task, argument, data):
    if argument in ("image", "audio", "labels"):
        fields = {"image": task.image, "audio": task.audio, "labels": task.labels}
        fields[argument] = data.draw(st.sampled_from(
            [None, fields[argument].bool(), fields[argument][:3]] if argument != "labels"
            else [None, task.labels.float(), task.labels[:3]]))
        assert_rejects(DigitTask, argument if fields[argument] is None or argument != "labels"
                       or fields["labels"].is_floating_point() else "image", **fields)
    elif argument == "device":
        assert_rejects(task.to, "device", data.draw(BAD_DEVICE))
    else:
        bad = not_a_number() if argument == "image_noise" else bad_int(0, 2**32 - 1)
        assert_rejects(load_digit_task, argument, **{argument: data.draw(
            bad.filter(lambda v: not (argument == "image_noise" and v is None)))})
    assert task.to("cpu").image.shape == (8, 1, 64)


@covers(DualEncoderClassifier, DualEncoderClassifier.embed, DualEncoderClassifier.forward,
        DualEncoderClassifier.loss)
@given(st.sampled_from(["input_dim", "name", "tokens", "labels"]), st.data())
def test_dual_encoder_checks_sizes_names_and_inputs(task, argument, data):
    torch.manual_seed(0)
    model = DualEncoderClassifier()
    if argument == "input_dim":
        assert_rejects(DualEncoderClassifier, argument, data.draw(st.one_of(
            bad_int(1, 4096), st.just(10**9))))
    elif argument == "name":
        assert_rejects(model.embed, argument, data.draw(st.sampled_from(["text", None, 0])),
                       task.image)
    elif argument == "tokens":
        assert_rejects(model.embed, "tokens", "image", data.draw(st.sampled_from(
            [None, task.image[:, 0], task.image[..., :32], task.image.long()])))
    else:
        assert_rejects(model.loss, "labels", task.image, task.audio, data.draw(
            st.sampled_from([None, task.labels.float(), task.labels[:3]])))
    logits = model(task.image.double(), None)
    assert logits.shape == (8, 10) and logits.dtype == torch.float32


DESIGN_FUNCTIONS = (digit_logits, design_loss, evaluate_design, design_cost)


@covers(build_design, digit_logits, design_loss, evaluate_design, design_cost, train_design,
        pretrain_digit_lm)
@given(st.sampled_from(["model", "design", "width", "image_tokens", "epochs", "seed", "device",
                        "steps"]), st.data())
def test_benchmark_functions_refuse_what_is_not_a_design_or_a_size(task, argument, data):
    if argument == "model":
        bad = data.draw(st.one_of(NOT_A_MODULE, st.just(nn.Linear(2, 2))))
        assert_rejects(digit_logits, "model", bad, task.image, task.audio)
        assert_rejects(design_loss, "model", bad, task.image, task.audio, task.labels)
        assert_rejects(evaluate_design, "model", bad, task, task.image)
        assert_rejects(design_cost, "model", bad)
        assert_rejects(train_design, "model", bad, task, task, epochs=1, seed=0, device="cpu")
    elif argument in ("design", "width"):
        bad = data.draw(st.sampled_from(["Early", None, "clip"]) if argument == "design" else
                        st.one_of(bad_int(8), st.just(12)))
        assert_rejects(build_design, argument, **{"design": "early", argument: bad})
    elif argument == "image_tokens":
        assert_rejects(design_cost, "image_tokens", build_design("early"),
                       image_tokens=data.draw(st.one_of(bad_int(0, 10**6), st.just(10**9))))
    elif argument in ("seed", "device"):
        bad = data.draw(bad_int(0, 2**32 - 1) if argument == "seed" else BAD_DEVICE)
        arguments = {"seed": 0, "device": "cpu", argument: bad}
        assert_rejects(train_design, argument, build_design("early"), task, task, epochs=1,
                       **arguments)
        assert_rejects(pretrain_digit_lm, argument, **arguments)
    elif argument == "steps":
        assert_rejects(pretrain_digit_lm, "steps", seed=0, device="cpu",
                       steps=data.draw(st.one_of(bad_int(1, 100_000), st.just(10**9))))
    else:
        assert_rejects(train_design, "epochs", build_design("early"), task, task, seed=0,
                       device="cpu", epochs=data.draw(bad_int(1)))


@covers(digit_logits, evaluate_design, design_loss, build_design)
@settings(max_examples=8)
@given(st.sampled_from(["early", "late", "hybrid", "dual encoder", "Thinker"]),
       st.sampled_from(["float64", "numpy", "batch 1"]))
def test_designs_score_float64_numpy_and_batch_one_inputs(task, design, form):
    torch.manual_seed(0)
    model = build_design(design).eval()
    expected = digit_logits(model, task.image, task.audio)
    if form == "batch 1":
        torch.testing.assert_close(digit_logits(model, task.image[:1], task.audio[:1]),
                                   expected[:1], rtol=1e-4, atol=1e-5)
    else:
        image = task.image.double() if form == "float64" else task.image.numpy()
        audio = task.audio.double() if form == "float64" else task.audio.numpy()
        got = digit_logits(model, torch.as_tensor(image), torch.as_tensor(audio))
        torch.testing.assert_close(got.float(), expected, rtol=1e-4, atol=1e-5)
    assert set(evaluate_design(model, task, task.image)) == {"accuracy", "image missing",
                                                             "audio missing", "image noise"}
    assert design_loss(model, task.image, task.audio, task.labels).dim() == 0
    assert benchmark.design_cost is design_cost  # still importable from course_lib.benchmark
