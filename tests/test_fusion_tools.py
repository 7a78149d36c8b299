"""The chapter's feature pipeline, misalignment fix, evaluation helpers and playground logic."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import load_digits_av
from course_lib.env import load_torchaudio
from course_lib.fusion import (
    DigitTokenizer,
    EarlyFusion,
    HybridFusion,
    LateFusion,
    PlaygroundData,
    Standardizer,
    align_by_timestamps,
    audio_frame_tokens,
    build_playground_data,
    count_parameters,
    flatten_tokens,
    fusion_accuracy,
    fusion_loss,
    linear_weight_count,
    modality_removal,
    model_inputs,
    playground_accuracies,
    playground_table,
    quantize_linear_weights,
    train_fusion,
)

# torchaudio is the reference where it loads with this torch (the newest stack may lack it).
torchaudio, TORCHAUDIO_STATUS = load_torchaudio()


@pytest.mark.skipif(torchaudio is None, reason=TORCHAUDIO_STATUS)
def test_audio_tokens_are_chunk_means_of_torchaudio_log_mel_frames():
    waveforms = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    tokens = audio_frame_tokens(waveforms, n_mels=32, num_tokens=10)
    assert tokens.shape == (2, 10, 32)
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=32)
    log_mel = torch.log(mel(waveforms).clamp(min=1e-10))  # (2, 32, 101 frames)
    frames = log_mel.shape[-1]
    for index in range(10):  # adaptive pooling: chunk i covers [floor(i F/10), ceil((i+1) F/10))
        start, end = (index * frames) // 10, -((-(index + 1) * frames) // 10)
        torch.testing.assert_close(tokens[:, index], log_mel[..., start:end].mean(-1),
                                   atol=1e-4, rtol=1e-4)


def test_audio_tokens_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"waveforms must be \(N, L\)"):
        audio_frame_tokens(torch.zeros(16000))
    with pytest.raises(ValueError, match="num_tokens must be positive"):
        audio_frame_tokens(torch.zeros(1, 16000), num_tokens=0)


def test_standardizer_centres_and_scales_each_feature_with_training_statistics():
    generator = torch.Generator().manual_seed(0)
    training = 3.0 + 2.0 * torch.randn(50, 10, 4, generator=generator)
    standardize = Standardizer(training)
    flat = standardize(training).reshape(-1, 4)
    torch.testing.assert_close(flat.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(0), torch.ones(4), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="tokens have width 3"):
        standardize(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="training_tokens must be"):
        Standardizer(torch.zeros(1, 4))


def test_digit_tokenizer_makes_one_image_token_and_five_audio_tokens_standardised():
    data = load_digits_av("train", seed=0)
    tokenizer = DigitTokenizer(data.images, data.waveforms)
    tokens = tokenizer(data.images, data.waveforms)
    assert tokens["image"].shape == (len(data), 1, 64)
    assert tokens["audio"].shape == (len(data), 5, 32)
    pixels = data.images.flatten(1)
    expected = (pixels[2] - pixels.mean(0)) / pixels.std(0).clamp_min(1e-6)
    torch.testing.assert_close(tokens["image"][2, 0], expected)
    for name in ("image", "audio"):  # training statistics: every feature centred and scaled
        flat = tokens[name].reshape(-1, tokens[name].shape[-1])
        torch.testing.assert_close(flat.mean(0), torch.zeros(flat.shape[1]), atol=1e-4, rtol=0)
    flat = flatten_tokens(tokens)
    assert flat["audio"].shape == (len(data), 160)
    assert torch.equal(flat["audio"][1, 32:64], tokens["audio"][1, 1])  # token order is kept
    assert flatten_tokens({"image": pixels[:2]})["image"].shape == (2, 64)  # vectors pass
    with pytest.raises(ValueError, match=r"features\['image'\] must be \(B, D\) or"):
        flatten_tokens({"image": pixels[0]})
    with pytest.raises(ValueError, match="images and waveforms must pair up"):
        tokenizer(data.images[:3], data.waveforms[:4])
    with pytest.raises(ValueError, match=r"images must be \(N, 1, H, W\)"):
        tokenizer(data.images[:3, 0], data.waveforms[:3])


def test_align_by_timestamps_undoes_the_datasets_random_shift():
    clean = load_digits_av("test", seed=2)
    shifted = load_digits_av("test", seed=2, max_shift_s=0.3)
    assert shifted.shifts.max() > 1000
    aligned = align_by_timestamps(shifted.waveforms, shifted.shifts)
    keep = 16000 - int(shifted.shifts.max())  # the end of a clip moved past 1 s is lost
    torch.testing.assert_close(aligned[:, :keep], clean.waveforms[:, :keep])
    row = int(shifted.shifts.argmax())  # what preceded the start now closes the clip
    shift = int(shifted.shifts[row])
    assert torch.equal(aligned[row, -shift:], shifted.waveforms[row, :shift])
    with pytest.raises(ValueError, match="shifts must be in"):
        align_by_timestamps(shifted.waveforms[:2], torch.tensor([0, 16000]))
    with pytest.raises(ValueError, match=r"waveforms must be \(N, L\) and shifts \(N,\)"):
        align_by_timestamps(shifted.waveforms[:2], torch.tensor([0]))


def test_count_parameters_matches_the_layer_arithmetic():
    model = EarlyFusion({"image": 6, "audio": 4}, 3, hidden_dim=8)
    assert count_parameters(model) == (10 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3)


class Oracle(torch.nn.Module):
    """Predicts the label from the image's first feature; the audio is ignored."""

    requires_all_modalities = True
    input_dims = {"image": 2, "audio": 2}

    def forward(self, features):
        image = features["image"]
        return torch.stack([-image[:, 0], image[:, 0]], dim=1)


def test_modality_removal_reports_the_drop_when_each_modality_is_removed():
    labels = torch.tensor([0, 1, 1, 0])
    image = torch.tensor([[-1.0, 0], [1, 0], [1, 0], [-1, 0]])
    features = {"image": image, "audio": torch.ones(4, 2)}
    result = modality_removal(Oracle(), features, labels)
    # Without the image the oracle sees zeros (zero_fill): scores tie, argmax picks class 0.
    assert result == {"all": 1.0, "no image": 0.5, "no audio": 1.0}
    assert fusion_accuracy(Oracle(), {"image": image}, labels) == 1.0


def tiny_playground() -> tuple[dict[str, torch.nn.Module], PlaygroundData]:
    generator = torch.Generator().manual_seed(0)
    data = PlaygroundData(
        image_tokens={level: torch.randn(40, 1, 6, generator=generator) for level in (0.0, 0.5)},
        audio_tokens={level: torch.randn(40, 3, 4, generator=generator) for level in (-6.0, 6.0)},
        labels=torch.randint(3, (40,), generator=generator),
    )
    torch.manual_seed(0)
    models = {"early": EarlyFusion({"image": 6, "audio": 12}, 3, hidden_dim=8),
              "late": LateFusion({"image": 6, "audio": 12}, 3, hidden_dim=8),
              "hybrid": HybridFusion({"image": 6, "audio": 4}, 3, d_model=8, num_heads=2)}
    return models, data


def test_playground_accuracies_evaluate_each_model_on_its_own_kind_of_input():
    models, data = tiny_playground()
    tokens = data.tokens(0.5, -6.0)
    assert model_inputs(models["hybrid"], tokens) is tokens
    assert model_inputs(models["early"], tokens)["audio"].shape == (40, 12)
    result = playground_accuracies(models, data, 0.5, -6.0, dropped=("audio",))
    for name, model in models.items():
        inputs = model_inputs(model, {"image": tokens["image"]})
        if name == "early":
            inputs = {**inputs, "audio": torch.zeros(40, 12)}
        with torch.no_grad():
            expected = (model(inputs).argmax(1) == data.labels).float().mean().item()
        assert result[name] == pytest.approx(expected), name


def test_playground_table_holds_every_setting_and_shares_the_irrelevant_levels():
    models, data = tiny_playground()
    table = playground_table(models, data)
    assert len(table) == 2 * 2 * 3
    assert table[0.5, 6.0, ()] == playground_accuracies(models, data, 0.5, 6.0)
    assert table[0.0, 6.0, ("image",)] == table[0.5, 6.0, ("image",)]
    assert table[0.5, 6.0, ("audio",)] == playground_accuracies(models, data, 0.5, -6.0,
                                                                ("audio",))


def test_playground_refuses_levels_that_were_not_precomputed_and_dropping_everything():
    models, data = tiny_playground()
    with pytest.raises(ValueError, match=r"snr_db 3.0 was not precomputed; choose one of"):
        data.tokens(0.0, 3.0)
    with pytest.raises(ValueError, match="dropped must name some"):
        playground_accuracies(models, data, 0.0, 6.0, dropped=("image", "audio"))
    with pytest.raises(ValueError, match="dropped must name some"):
        playground_accuracies(models, data, 0.0, 6.0, dropped=("text",))


def test_build_playground_data_degrades_the_same_examples_at_each_level():
    clean = load_digits_av("test", seed=1)
    tokenizer = DigitTokenizer(clean.images[:20], clean.waveforms[:20])
    data = build_playground_data([0.0, 0.5], [-10.0, 10.0], tokenizer, num_examples=20)
    assert torch.equal(data.labels, clean.labels[:20])
    torch.testing.assert_close(data.image_tokens[0.0], tokenizer.image_tokens(clean.images[:20]))
    noisy = load_digits_av("test", seed=1, snr_db=-10.0).waveforms[:20]
    torch.testing.assert_close(data.audio_tokens[-10.0], tokenizer.audio_tokens(noisy))
    with pytest.raises(ValueError, match="num_examples must be in 1..450"):
        build_playground_data([0.0], [0.0], tokenizer, num_examples=0)
    with pytest.raises(ValueError, match="at least one level"):
        build_playground_data([], [0.0], tokenizer)


@pytest.mark.parametrize("dropout_p", [0.0, 0.5])
def test_train_fusion_feeds_each_model_its_inputs_and_learns(dropout_p):
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (96,), generator=generator)
    tokens = {"image": torch.randn(96, 1, 6, generator=generator) + 3 * labels[:, None, None],
              "audio": torch.randn(96, 3, 4, generator=generator) - 3 * labels[:, None, None]}
    torch.manual_seed(0)
    models = {"early": EarlyFusion({"image": 6, "audio": 12}, 3, hidden_dim=16),
              "late": LateFusion({"image": 6, "audio": 12}, 3, hidden_dim=16),
              "hybrid": HybridFusion({"image": 6, "audio": 4}, 3, d_model=16, num_heads=2)}
    for name, model in models.items():
        history = train_fusion(model, tokens, labels, epochs=30, lr=1e-2, batch_size=32,
                               modality_dropout_p=dropout_p, progress=False)
        assert len(history.losses) == 30 * 3
        assert sum(history.losses[-3:]) < 0.5 * sum(history.losses[:3]), name
        assert fusion_accuracy(model, model_inputs(model, tokens), labels) > 0.9, name


def test_train_fusion_and_fusion_loss_name_what_is_missing():
    model = EarlyFusion({"image": 6, "audio": 12}, 3)
    with pytest.raises(ValueError, match=r"tokens lacks \['audio'\]"):
        train_fusion(model, {"image": torch.zeros(4, 1, 6)}, torch.zeros(4).long(), epochs=1)
    late = LateFusion({"image": 6}, 3)
    features, labels = {"image": torch.randn(4, 6)}, torch.tensor([0, 1, 2, 0])
    assert fusion_loss(late, features, labels).item() == pytest.approx(
        late.loss(features, labels).item())


def test_int8_quantisation_matches_pytorchs_per_channel_quantiser():
    torch.manual_seed(0)
    model = EarlyFusion({"image": 6, "audio": 12}, 3, hidden_dim=8)
    quantized = quantize_linear_weights(model)
    for original, rounded in zip(model.net, quantized.net, strict=True):
        if not isinstance(original, torch.nn.Linear):
            continue
        scales = original.weight.detach().abs().amax(dim=1) / 127
        reference = torch.quantize_per_channel(original.weight.detach(), scales.double(),
                                               torch.zeros(len(scales), dtype=torch.long), 0,
                                               torch.qint8).dequantize()
        torch.testing.assert_close(rounded.weight, reference)
        assert torch.equal(rounded.bias, original.bias)
        assert len(torch.unique(rounded.weight[0])) <= 255
    assert not torch.equal(model.net[0].weight, quantized.net[0].weight)  # original untouched
    assert linear_weight_count(model) == (18 * 8 + 8 * 8 + 8 * 3, 8 + 8 + 3)
