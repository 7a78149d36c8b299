"""Tests of the digit mosaics and of chapter 03's question-attention model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.attention import MultiHeadSelfAttention
from course_lib.attention_task import (
    MosaicModelConfig,
    MosaicQuestionModel,
    evaluate_mosaic_model,
    train_mosaic_model,
)
from course_lib.data.digits_av import load_digit_images
from course_lib.data.mosaic import QUESTIONS, make_digit_mosaics, mosaic_image_indices


def test_mosaic_splits_share_no_digit_image():
    train, val, test = (set(mosaic_image_indices(s).tolist()) for s in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    assert len(train) + len(val) + len(test) == 1797
    assert abs(len(val) / (len(train) + len(val)) - 0.2) < 0.01


def test_mosaics_have_documented_shapes_and_answers():
    data = make_digit_mosaics("train", 50, seed=3)
    assert data.tiles.shape == (50, 4, 8, 8) and data.tiles.dtype == torch.float32
    assert data.digits.shape == (50, 4) and data.questions.shape == (50,)
    assert data.images.shape == (50, 16, 16)
    assert set(data.questions.tolist()) <= set(range(len(QUESTIONS)))
    rows = torch.arange(50)
    torch.testing.assert_close(data.answers, data.digits[rows, data.questions])


def test_mosaic_image_layout_puts_each_tile_in_its_corner():
    data = make_digit_mosaics("val", 5, seed=0)
    picture = data.images[2]
    torch.testing.assert_close(picture[:8, :8], data.tiles[2, 0])   # top-left
    torch.testing.assert_close(picture[:8, 8:], data.tiles[2, 1])   # top-right
    torch.testing.assert_close(picture[8:, :8], data.tiles[2, 2])   # bottom-left
    torch.testing.assert_close(picture[8:, 8:], data.tiles[2, 3])   # bottom-right


def test_mosaic_tiles_are_real_digit_images_of_their_split_with_their_labels():
    images, labels = load_digit_images()
    data = make_digit_mosaics("test", 20, seed=1)
    allowed = mosaic_image_indices("test")
    flat = images[allowed].reshape(len(allowed), -1)
    for tile, digit in zip(data.tiles.reshape(-1, 64).numpy(), data.digits.flatten().tolist(),
                           strict=True):
        match = np.flatnonzero((flat == tile).all(axis=1))
        assert len(match) >= 1 and digit in labels[allowed][match]


def test_mosaics_are_deterministic_in_the_seed():
    a, b = make_digit_mosaics("train", 30, seed=7), make_digit_mosaics("train", 30, seed=7)
    c = make_digit_mosaics("train", 30, seed=8)
    torch.testing.assert_close(a.tiles, b.tiles)
    assert torch.equal(a.questions, b.questions)
    assert not torch.equal(a.tiles, c.tiles)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"split": "validation", "n": 3, "seed": 0}, "split"),
    ({"split": "train", "n": 0, "seed": 0}, "n"),
    ({"split": "train", "n": 2.5, "seed": 0}, "n"),
    ({"split": "train", "n": 3, "seed": -1}, "seed"),
])
def test_make_digit_mosaics_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_digit_mosaics(**kwargs)


def test_model_output_and_attention_shapes():
    data = make_digit_mosaics("train", 6, seed=0)
    model = MosaicQuestionModel(MosaicModelConfig(dim=16, num_heads=2, hidden=8))
    logits = model(data.tiles, data.questions)
    assert logits.shape == (6, 10)
    assert model.question_attention.shape == (6, 5)
    torch.testing.assert_close(model.question_attention.sum(1), torch.ones(6))


def test_model_question_row_equals_the_course_self_attention_by_hand():
    """The question's weights are row 5 of softmax(QK^T/sqrt(d)) of the normalised tokens."""
    torch.manual_seed(0)
    data = make_digit_mosaics("train", 4, seed=0)
    model = MosaicQuestionModel(MosaicModelConfig(dim=8, num_heads=1, hidden=8))
    model(data.tiles, data.questions)
    tokens = model.norm(model.tokens(data.tiles, data.questions))
    queries = model.attention.q_proj(tokens[:, -1])                 # (B, D)
    keys = model.attention.k_proj(tokens)                           # (B, 5, D)
    by_hand = torch.softmax(torch.einsum("bd,btd->bt", queries, keys) / 8 ** 0.5, dim=1)
    torch.testing.assert_close(model.question_attention, by_hand.detach())
    assert isinstance(model.attention, MultiHeadSelfAttention)


def test_hidden_tile_gets_no_attention():
    data = make_digit_mosaics("train", 5, seed=0)
    model = MosaicQuestionModel()
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[:, 2] = False
    model(data.tiles, data.questions, tile_mask=mask)
    assert model.question_attention[:, 2].abs().max() == 0


@pytest.mark.parametrize(("tiles", "questions", "word"), [
    (torch.zeros(2, 4, 64), torch.zeros(2, dtype=torch.int64), "tiles"),
    (torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.int64), "tiles"),
    (torch.zeros(2, 4, 8, 8), torch.zeros(3, dtype=torch.int64), "questions"),
    (torch.zeros(2, 4, 8, 8), torch.zeros(2), "questions"),
    (torch.zeros(2, 4, 8, 8), torch.tensor([0, 4]), "questions"),
])
def test_model_rejects_bad_inputs(tiles, questions, word):
    with pytest.raises(ValueError, match=word):
        MosaicQuestionModel()(tiles, questions)


def test_model_rejects_a_bad_tile_mask():
    data = make_digit_mosaics("train", 2, seed=0)
    with pytest.raises(ValueError, match="tile_mask"):
        MosaicQuestionModel()(data.tiles, data.questions, tile_mask=torch.ones(2, 5).bool())
    with pytest.raises(ValueError, match="num_heads"):
        MosaicQuestionModel(MosaicModelConfig(dim=10, num_heads=3))


def test_untrained_question_attention_is_spread_out():
    torch.manual_seed(0)
    result = evaluate_mosaic_model(MosaicQuestionModel(), make_digit_mosaics("val", 200, 0))
    assert 0.1 < result.mass_on_answer_tile < 0.3  # about 1/5
    assert result.accuracy < 0.25


def test_training_makes_the_question_attend_to_the_asked_tile():
    torch.manual_seed(0)
    model = MosaicQuestionModel()
    train_data = make_digit_mosaics("train", 1500, seed=0)
    val = make_digit_mosaics("val", 200, seed=1)
    history = train_mosaic_model(model, train_data, val, epochs=6, lr=3e-3)
    steps = len(history.losses)
    for name in ("mass_on_image", "mass_on_answer_tile", "monitor_accuracy",
                 "monitor_mass_on_answer_tile"):
        assert len(history.logs[name]) == steps
    assert history.logs["mass_on_answer_tile"][0] < 0.3
    test = evaluate_mosaic_model(model, make_digit_mosaics("test", 500, seed=2))
    assert test.mass_on_answer_tile > 0.8 and test.accuracy > 0.7
    hidden = torch.ones(500, 4, dtype=torch.bool)
    hidden[torch.arange(500), test.attention[:, :4].argmax(1)] = False
    ablated = evaluate_mosaic_model(model, make_digit_mosaics("test", 500, seed=2), hidden)
    assert ablated.accuracy < test.accuracy - 0.4


def test_train_mosaic_model_rejects_an_empty_monitor_set():
    data = make_digit_mosaics("train", 4, seed=0)
    empty = make_digit_mosaics("val", 1, seed=0)
    empty.answers = empty.answers[:0]
    with pytest.raises(ValueError, match="monitor_data"):
        train_mosaic_model(MosaicQuestionModel(), data, empty, epochs=1)


def test_training_is_deterministic_in_the_seed():
    data = make_digit_mosaics("train", 128, seed=0)
    monitor = make_digit_mosaics("val", 16, seed=1)
    histories = []
    for _ in range(2):
        torch.manual_seed(0)
        histories.append(train_mosaic_model(MosaicQuestionModel(), data, monitor, epochs=1,
                                             batch_size=32, seed=5))
    assert histories[0].losses == histories[1].losses
    assert histories[0].logs == histories[1].logs


def test_illustrative_cat_weights_are_a_softmax_row_led_by_the_image():
    from course_lib.attention_task import ILLUSTRATIVE_CAT_WEIGHTS

    assert abs(sum(ILLUSTRATIVE_CAT_WEIGHTS.values()) - 1.0) < 1e-12
    assert max(ILLUSTRATIVE_CAT_WEIGHTS, key=ILLUSTRATIVE_CAT_WEIGHTS.get) == "<image>"


def test_train_mosaic_model_moves_the_model_to_the_device_it_is_given():
    from course_lib.attention_task import train_mosaic_model

    data = make_digit_mosaics("train", 8, seed=0)
    model = MosaicQuestionModel(MosaicModelConfig(dim=16, num_heads=2, hidden=8))
    # On the meta device the move happens and the arithmetic cannot (no values to compare).
    with pytest.raises((RuntimeError, NotImplementedError, ValueError)):
        train_mosaic_model(model, data, data, epochs=1, device="meta")
    assert next(model.parameters()).device.type == "meta"
