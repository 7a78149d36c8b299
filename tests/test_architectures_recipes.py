"""Tests of the training recipes: LLaVA's two stages, Flamingo's frozen LM, gates and media mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import course_lib.architectures.training as training
from course_lib.architectures import (
    IGNORE_INDEX,
    DecoderLM,
    FlamingoLikeModel,
    LlavaLikeModel,
    PerceiverResampler,
    VisionTower,
    gate_values,
    instruction_labels,
    media_attention_mask,
    next_token_loss,
    scored_next_token_loss,
    train_flamingo,
    train_llava_stage,
    train_on,
)
from course_lib.vision import ViTEncoder

VOCAB, IMAGE = 50, 49


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_lm():
    return DecoderLM(VOCAB, 32, depth=2, num_heads=4, ff_dim=48)


def conversations(batch=6, user=4, answer=3):
    """Rows ``u u <image> u u | a a a``: answers start at user + 1 (the placeholder is in the
    user turn)."""
    ids = torch.randint(0, IMAGE, (batch, user + 1 + answer))
    ids[:, 2] = IMAGE
    return ids, torch.full((batch,), user + 1)


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# ----------------------------------------------------------------------------- LLaVA
def test_vision_tower_returns_the_penultimate_blocks_patch_tokens():
    vit = ViTEncoder(8, 2, 1, dim=16, depth=3, num_heads=4, pool="none")
    captured = {}
    vit.blocks[-2].register_forward_hook(lambda module, args, out: captured.update(out=out))
    images = torch.randn(2, 1, 8, 8)
    vit(images)  # the full forward pass, through all three blocks and the final norm
    tower = VisionTower(vit)
    torch.testing.assert_close(tower(images), captured["out"][:, 1:])
    assert VisionTower(vit, select_layer=-1, drop_cls=False)(images).shape == (2, 17, 16)
    with pytest.raises(ValueError, match="select_layer"):
        VisionTower(vit, select_layer=-4)
    with pytest.raises(ValueError, match="vit"):
        VisionTower(torch.nn.Linear(2, 2))


def test_instruction_labels_keep_only_the_answer_and_the_real_tokens():
    ids = torch.tensor([[5, 6, 7, 8, 9], [1, 2, 3, 4, 0]])
    mask = torch.tensor([[True] * 5, [True, True, True, True, False]])
    labels = instruction_labels(ids, [3, 2], mask)
    assert labels.tolist() == [[-100, -100, -100, 8, 9], [-100, -100, 3, 4, -100]]
    with pytest.raises(ValueError, match="answer_starts"):
        instruction_labels(ids, [3])
    with pytest.raises(ValueError, match="answer_starts"):
        instruction_labels(ids, [3, 9])
    with pytest.raises(ValueError, match="input_ids"):
        instruction_labels(ids.float(), [1, 1])


def test_next_token_loss_is_the_cross_entropy_of_each_position_with_the_next_label():
    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[1, 2, IGNORE_INDEX, 3], [IGNORE_INDEX, 4, 5, IGNORE_INDEX]])
    terms = [F.cross_entropy(logits[b, t - 1][None], labels[b, t][None])
             for b in range(2) for t in range(1, 4) if labels[b, t] != IGNORE_INDEX]
    torch.testing.assert_close(next_token_loss(logits, labels), torch.stack(terms).mean())
    with pytest.raises(ValueError, match="no position"):
        next_token_loss(logits, torch.full((2, 4), IGNORE_INDEX))
    with pytest.raises(ValueError, match="labels"):
        next_token_loss(logits, labels[:, :3])


def llava_with_tower():
    tower = VisionTower(ViTEncoder(8, 2, 1, dim=16, depth=2, num_heads=4, pool="none"))
    return LlavaLikeModel(tower, 16, small_lm(), IMAGE, projector_kind="mlp")


def test_llava_stage_1_updates_only_the_projector():
    model = llava_with_tower()
    ids, starts = conversations()
    images = torch.randn(len(ids), 1, 8, 8)
    before = snapshot(model)
    train_llava_stage(model, 1, images, ids, instruction_labels(ids, starts), device="cpu",
                      epochs=1, batch_size=len(ids), progress=False)  # one optimiser step
    after = snapshot(model)
    for name in before:
        if name.startswith("projector."):
            assert not torch.equal(before[name], after[name]), name
        else:
            assert torch.equal(before[name], after[name]), name  # bit-identical


def test_llava_stage_2_also_trains_the_language_model_but_not_the_vision_tower():
    model = llava_with_tower()
    ids, starts = conversations()
    before = snapshot(model)
    train_llava_stage(model, 2, torch.randn(len(ids), 1, 8, 8), ids,
                      instruction_labels(ids, starts), device="cpu", epochs=1,
                      batch_size=len(ids), progress=False)
    after = snapshot(model)
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"projector", "language_model"}


def test_llava_stage_2_loss_ignores_the_user_turn():
    model = llava_with_tower()
    ids, starts = conversations()
    images = torch.randn(len(ids), 1, 8, 8)
    labels = instruction_labels(ids, starts)
    loss = model.loss(images, ids, labels)
    # By hand: only the answer tokens, each predicted from the position before it.
    logits, spliced = model(images, ids)
    shift = model.image_tokens(images).shape[1] - 1  # the image's N tokens replace one id
    terms = [F.cross_entropy(logits[b, t + shift - 1][None], ids[b, t][None])
             for b in range(len(ids)) for t in range(int(starts[b]), ids.shape[1])]
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    # Other user-turn labels change nothing once masked; another answer token changes the loss.
    other = ids.clone()
    other[:, :2] = (other[:, :2] + 1) % IMAGE
    assert torch.equal(model.loss(images, ids, instruction_labels(other, starts)), loss)
    wrong = labels.clone()
    wrong[0, -1] = (wrong[0, -1] + 1) % IMAGE
    assert not torch.equal(model.loss(images, ids, wrong), loss)


def test_llava_loss_sends_no_gradient_through_the_user_turns_predictions():
    model = llava_with_tower()
    ids, starts = conversations()
    logits, spliced = model(torch.randn(len(ids), 1, 8, 8), ids, instruction_labels(ids, starts))
    logits.retain_grad()
    next_token_loss(logits, spliced.labels).backward()
    predicts_answer = F.pad(spliced.labels[:, 1:] != IGNORE_INDEX, (0, 1), value=False)
    assert logits.grad[~predicts_answer].abs().max() == 0
    assert logits.grad[predicts_answer].abs().sum(dim=-1).min() > 0


def test_llava_generate_is_greedy_over_the_spliced_sequence():
    model = llava_with_tower().eval()
    ids, _ = conversations(batch=3)
    images = torch.randn(3, 1, 8, 8)
    generated = model.generate(images, ids, max_new_tokens=2)
    logits, _ = model(images, ids)
    assert torch.equal(generated[:, 0], logits[:, -1].argmax(dim=-1))
    second, _ = model(images, torch.cat([ids, generated[:, :1]], dim=1))
    assert torch.equal(generated[:, 1], second[:, -1].argmax(dim=-1))


# ----------------------------------------------------------------------------- Flamingo
def flamingo(open_gates=False, **options):
    model = FlamingoLikeModel(None, 16, small_lm(), num_latents=4, resampler_depth=1,
                              num_heads=4, media_token_id=IMAGE, **options)
    if open_gates:
        with torch.no_grad():
            for block in model.cross_blocks:
                block.attn_gate.fill_(1.0)
                block.ff_gate.fill_(0.5)
    return model


def test_per_image_resampling_gives_each_image_its_own_latents():
    resampler = PerceiverResampler(16, num_latents=4, depth=1, num_heads=4)
    media = torch.randn(3, 2, 7, 16)  # (B, num_images, M, D)
    latents = resampler.resample_images(media)
    assert latents.shape == (3, 2, 4, 16)  # (B, num_images, num_latents, D)
    torch.testing.assert_close(latents[:, 1], resampler(media[:, 1]))  # image 2 alone
    with pytest.raises(ValueError, match="media"):
        resampler.resample_images(media[0])


def test_media_mask_lets_each_token_see_only_the_latest_image():
    ids = torch.tensor([[1, IMAGE, 2, 3, IMAGE, 4]])
    allowed, has_image = media_attention_mask(ids, IMAGE, num_images=2, num_latents=2)
    assert has_image.tolist() == [[False, True, True, True, True, True]]
    assert allowed[0].int().tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0],
                                         [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    with pytest.raises(ValueError, match="markers"):
        media_attention_mask(ids, IMAGE, num_images=1, num_latents=2)


def test_a_later_image_does_not_change_the_outputs_before_its_marker():
    model = flamingo(open_gates=True)
    ids = torch.tensor([[1, IMAGE, 2, 3, IMAGE, 4, 5]])
    media = torch.randn(1, 2, 5, 16)
    changed = media.clone()
    changed[:, 1] = torch.randn(5, 16)  # a different second image
    with torch.no_grad():
        logits, logits_changed = model(media, ids), model(changed, ids)
    assert torch.equal(logits[:, :4], logits_changed[:, :4])  # before image 2's marker
    assert not torch.allclose(logits[:, 4:], logits_changed[:, 4:])
    first_changed = media.clone()
    first_changed[:, 0] = torch.randn(5, 16)
    with torch.no_grad():
        logits_first = model(first_changed, ids)
    assert torch.equal(logits[:, :1], logits_first[:, :1])  # no image before the first marker
    assert not torch.allclose(logits[:, 1:4], logits_first[:, 1:4])


def test_every_gate_is_exactly_the_identity_at_alpha_zero():
    model = flamingo(open_gates=False)
    with torch.no_grad():  # the branches behind the gates are not zero
        for block in model.cross_blocks:
            block.cross_attention.out_proj.bias.fill_(3.0)
    ids = torch.tensor([[1, IMAGE, 2, 3, IMAGE, 4]])
    media = torch.randn(1, 2, 5, 16)
    assert gate_values(model)["attention"] == [0.0, 0.0]
    with torch.no_grad():
        assert torch.equal(model(media, ids), model.language_model(ids))
        opened = flamingo(open_gates=True)
        lm_alone = opened.language_model(ids)
        assert torch.equal(opened(media, ids, alpha_scale=0.0), lm_alone)
        assert not torch.allclose(opened(media, ids), lm_alone)


def test_flamingo_training_leaves_every_language_model_parameter_bit_identical():
    model = flamingo()
    ids = torch.tensor([[1, IMAGE, 2, 3, IMAGE, 4, 5]]).repeat(4, 1)
    media = torch.randn(4, 2, 5, 16)
    before = snapshot(model)
    history = train_flamingo(model, media, ids, model.labels(ids), device="cpu", epochs=3,
                             batch_size=2, lr=1e-2, progress=False)
    after = snapshot(model)
    for name in before:
        same = torch.equal(before[name], after[name])
        assert same == name.startswith("language_model."), name
    assert len(history.logs["attention gate 1"]) == len(history.losses) == 6
    assert history.logs["attention gate 2"][-1] == pytest.approx(gate_values(model)["attention"][1])
    assert model.labels(ids)[0, 1] == IGNORE_INDEX  # the marker is never a target


def test_flamingo_rejects_bad_arguments():
    with pytest.raises(ValueError, match="media_token_id"):
        FlamingoLikeModel(None, 16, small_lm(), num_heads=4, media_token_id=VOCAB)
    model = flamingo()
    with pytest.raises(ValueError, match="alpha_scale"):
        model(torch.randn(1, 5, 16), torch.tensor([[IMAGE, 1]]), alpha_scale=float("nan"))
    with pytest.raises(ValueError, match="media"):
        model(torch.randn(5, 16), torch.tensor([[IMAGE, 1]]))
    with pytest.raises(ValueError, match="batch"):
        model(torch.randn(2, 5, 16), torch.tensor([[IMAGE, 1]]))


# ----------------------------------------------------------------------------- devices
def test_train_on_moves_the_model_and_every_tensor_to_the_device(monkeypatch):
    seen = {}

    def fake_train(model, loss_of_batch, tensors, **options):
        seen["model"] = {p.device.type for p in model.parameters()}
        seen["tensors"] = {t.device.type for t in tensors}
        seen["options"] = options
        return training.History()

    monkeypatch.setattr(training, "train", fake_train)
    model = llava_with_tower()
    ids, starts = conversations()
    train_llava_stage(model, 1, torch.randn(len(ids), 1, 8, 8), ids,
                      instruction_labels(ids, starts), device="meta", epochs=2)
    assert seen["model"] == {"meta"} and seen["tensors"] == {"meta"}
    assert seen["options"]["epochs"] == 2
    with pytest.raises(ValueError, match="device"):
        train_on(model, lambda b: b[0].sum(), [ids], device="no-such-device", epochs=1)
    with pytest.raises(ValueError, match="model"):
        train_on("model", lambda b: b[0].sum(), [ids], device="cpu", epochs=1)


def test_scored_loss_equals_the_full_loss_of_the_head_on_every_position():
    lm = small_lm()
    hidden = torch.randn(3, 6, 32)
    labels = torch.randint(0, VOCAB, (3, 6))
    labels[:, :3] = IGNORE_INDEX
    full = next_token_loss(lm.head(hidden), labels)
    torch.testing.assert_close(scored_next_token_loss(hidden, lm.head, labels), full)
    with pytest.raises(ValueError, match="no position"):
        scored_next_token_loss(hidden, lm.head, torch.full((3, 6), IGNORE_INDEX))
    with pytest.raises(ValueError, match="hidden"):
        scored_next_token_loss(hidden[0], lm.head, labels)


def test_flamingo_loss_is_the_next_token_loss_of_its_logits():
    model = flamingo(open_gates=True)
    ids = torch.tensor([[1, IMAGE, 2, 3, IMAGE, 4, 5]])
    media = torch.randn(1, 2, 5, 16)
    labels = model.labels(ids)
    torch.testing.assert_close(model.loss(media, ids), next_token_loss(model(media, ids), labels))
    with pytest.raises(ValueError, match="labels"):
        model.loss(media, ids, labels[:, :3])
