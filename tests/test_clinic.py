"""The synthetic clinic: determinism, what each record shows, and the documented ceilings."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from course_lib.data import clinic
from course_lib.data.clinic import (
    CLASS_NAMES,
    DOCUMENTED_CEILINGS,
    LATENT_NAMES,
    MODALITY_LATENTS,
    REPORT_VOCABULARY,
    SYMPTOMS,
    ZONE_NAMES,
    bag_of_words,
    bayes_ceilings,
    bayes_posterior,
    load_clinic,
    report_tokens,
    sample_latents,
)
from course_lib.env import load_torchaudio

# torchaudio is the reference where it loads with this torch (the newest stack may lack it).
torchaudio, TORCHAUDIO_STATUS = load_torchaudio()


@pytest.fixture(scope="module")
def small_train():
    return load_clinic("train", n_patients=1200, seed=0)


@pytest.fixture(scope="module")
def small_test():
    return load_clinic("test", n_patients=600, seed=0)


@pytest.fixture(scope="module")
def many_latents():
    """Hidden variables of 400,000 patients, drawn by the sampler (no rendering)."""
    return sample_latents(400_000, np.random.default_rng(123))


def _same(a, b):
    assert torch.equal(a.images, b.images) and torch.equal(a.waveforms, b.waveforms)
    assert torch.equal(a.labels, b.labels) and a.reports == b.reports
    assert all(np.array_equal(a.latents[k], b.latents[k]) for k in LATENT_NAMES)


def test_same_seed_gives_identical_patients():
    _same(load_clinic("test", n_patients=150, seed=7), load_clinic("test", n_patients=150, seed=7))


def test_seed_and_split_change_the_patients():
    base = load_clinic("train", n_patients=150, seed=0)
    for other in (load_clinic("train", n_patients=150, seed=1),
                  load_clinic("test", n_patients=150, seed=0)):
        assert not torch.equal(base.images, other.images)
        assert base.reports != other.reports


def test_records_have_the_documented_shapes_types_and_ranges(small_train):
    data = small_train
    assert len(data) == 1200 and data.split == "train" and data.sample_rate == 4000
    assert data.images.shape == (1200, 1, 32, 32) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    assert data.waveforms.shape == (1200, 4000) and data.waveforms.dtype == torch.float32
    assert data.waveforms.abs().max() <= 1
    assert data.labels.dtype == torch.int64 and set(data.labels.tolist()) == {0, 1, 2, 3}
    assert len(data.reports) == 1200 and all(isinstance(r, str) and r for r in data.reports)
    assert set(data.latents) == set(LATENT_NAMES)
    assert load_clinic("test").labels.shape == (1200,)


def test_classes_are_balanced(many_latents):
    shares = np.bincount(many_latents["label"], minlength=4) / len(many_latents["label"])
    np.testing.assert_allclose(shares, 0.25, atol=0.005)


def test_subset_keeps_every_record_aligned(small_train):
    part = small_train.subset([5, 2])
    assert part.reports == [small_train.reports[5], small_train.reports[2]]
    assert torch.equal(part.images[1], small_train.images[2])
    assert torch.equal(part.waveforms[0], small_train.waveforms[5])
    assert part.latents["prior_zone"][1] == small_train.latents["prior_zone"][2]
    assert part.labels.tolist() == [small_train.labels[5].item(), small_train.labels[2].item()]


# ----------------------------------------------------------------------------- reports
def test_negation_scope_runs_to_the_end_of_the_sentence():
    assert report_tokens("No fever. Reports night sweats.") == ["no fever", "night", "sweats"]
    assert report_tokens("Denies fever, weight loss. Cough for 3 days.") == [
        "no fever", "no weight", "no loss", "cough", "days"]
    assert report_tokens("No fever but a cough; smoker.") == ["no fever", "cough", "smoker"]
    assert report_tokens("No fever, no cough.", negation_aware=False) == ["fever", "cough"]


def test_reports_use_only_the_documented_vocabulary(small_train):
    used = {t.removeprefix("no ") for r in small_train.reports for t in report_tokens(r)}
    assert used == set(REPORT_VOCABULARY)


def test_reports_state_the_hidden_facts(small_train):
    for i, report in enumerate(small_train.reports[:400]):
        tokens = report_tokens(report)
        latent = {k: int(v[i]) for k, v in small_train.latents.items()}
        if latent["prior_zone"]:
            assert f"opacity in the {ZONE_NAMES[latent['prior_zone']]} zone" in report
        else:
            assert "opacity" not in tokens
        assert ("weeks" in tokens) == (latent["cough"] == 2)
        assert ("days" in tokens) == (latent["cough"] == 1)
        first_word = {s: s.split()[0] for s in SYMPTOMS}
        for symptom in SYMPTOMS:
            assert (first_word[symptom] in tokens) == (latent[symptom] == 1), report
            assert (f"no {first_word[symptom]}" in tokens) == (latent[symptom] == 2), report


def test_bag_of_words_counts_words_and_negated_words_in_separate_columns():
    counts = bag_of_words(["Fever. No fever. Fever.", "Cough for 2 weeks."])
    words = list(REPORT_VOCABULARY)
    assert counts.shape == (2, 2 * len(words)) and counts.dtype == torch.float32
    assert counts[0, words.index("fever")] == 2
    assert counts[0, len(words) + words.index("fever")] == 1
    assert counts[1, words.index("cough")] == 1 and counts[1, words.index("weeks")] == 1
    assert counts.sum() == 5
    blind = bag_of_words(["Fever. No fever. Fever."], negation_aware=False)
    assert blind.shape == (1, len(words)) and blind[0, words.index("fever")] == 3


def test_a_bag_of_words_that_ignores_negation_does_worse(small_train, small_test):
    """Held-out accuracy of a logistic regression on the reports, with and without negation."""
    scores = {}
    for aware in (True, False):
        features = bag_of_words(small_train.reports, negation_aware=aware).numpy()
        model = LogisticRegression(C=0.5, max_iter=2000).fit(features, small_train.labels)
        test_features = bag_of_words(small_test.reports, negation_aware=aware).numpy()
        scores[aware] = model.score(test_features, small_test.labels)
    assert scores[True] > scores[False] + 0.08
    assert scores[True] <= DOCUMENTED_CEILINGS["text"] + 0.04  # cannot beat the ceiling


# ----------------------------------------------------------------------------- images, sounds
def _held_out_score(features_train, target_train, features_test, target_test):
    mean, std = features_train.mean(0), features_train.std(0) + 1e-6
    model = LogisticRegression(C=0.5, max_iter=3000)
    model.fit((features_train - mean) / std, target_train)
    return model.score((features_test - mean) / std, target_test)


def test_films_show_the_opacity_zone(small_train, small_test):
    def pooled(data):
        return torch.nn.functional.avg_pool2d(data.images, 4).flatten(1).numpy()

    score = _held_out_score(pooled(small_train), small_train.latents["opacity_zone"],
                            pooled(small_test), small_test.latents["opacity_zone"])
    assert score > 0.95


def test_opacities_are_brighter_in_their_zone_on_the_radiograph_convention(small_train):
    """Zone 1 (patient's right upper) is in the image's top-left quadrant."""
    images, zone = small_train.images[:, 0], small_train.latents["opacity_zone"]
    top_left = images[:, 2:14, 2:16].mean(dim=(1, 2))
    with_opacity = top_left[torch.from_numpy(zone == 1)].mean()
    clear = top_left[torch.from_numpy(zone == 0)].mean()
    assert with_opacity > clear + 0.02


@pytest.mark.skipif(torchaudio is None, reason=TORCHAUDIO_STATUS)
def test_breath_sounds_show_wheeze_and_crackles(small_train, small_test):
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=4000, n_fft=256, hop_length=64,
                                               n_mels=32)

    def summary(data):
        log_mel = torch.log(mel(data.waveforms) + 1e-10)
        return torch.cat([log_mel.mean(-1), log_mel.std(-1), log_mel.amax(-1)], 1).numpy()

    score = _held_out_score(summary(small_train), small_train.latents["sound"],
                            summary(small_test), small_test.latents["sound"])
    assert score > 0.93


def test_a_wheeze_is_a_tone_in_its_band(small_train):
    spectrum = torch.fft.rfft(small_train.waveforms).abs() ** 2  # 1 Hz per bin
    band = spectrum[:, 250:700]
    peakiness = (band.max(dim=1).values / band.median(dim=1).values).numpy()
    sound = small_train.latents["sound"]
    assert np.median(peakiness[sound == 2]) > 5 * np.median(peakiness[sound == 0])


# ----------------------------------------------------------------------------- ceilings
def test_documented_ceilings_equal_the_exact_computation():
    computed = bayes_ceilings()
    assert set(computed) == set(DOCUMENTED_CEILINGS)
    for name, value in DOCUMENTED_CEILINGS.items():
        assert computed[name] == pytest.approx(value, abs=1e-4), name
        assert f"{value:.4f}" in clinic.__doc__, name


def test_ceilings_tell_the_story_of_the_chapter():
    c = DOCUMENTED_CEILINGS
    best_single = max(c["image"], c["text"], c["audio"])
    assert c["image+text+audio"] > c["decision-level"] + 0.08  # fusion can beat late fusion
    assert c["decision-level"] > best_single + 0.1  # and late fusion still helps
    assert c["text"] > c["text ignoring negation"] + 0.15  # negation matters
    assert c["image+text"] > max(c["image"], c["text"]) + 0.2  # the two need each other


def _majority_vote_accuracy(latents, names):
    """Fit "most frequent class per observation" on one half, score it on the other."""
    key = np.zeros(len(latents["label"]), dtype=np.int64)
    for name in names:
        key = key * 10 + latents[name]
    half = len(key) // 2
    counts = np.zeros((10 ** len(names), 4))
    np.add.at(counts, (key[:half], latents["label"][:half]), 1)
    return float((counts.argmax(1)[key[half:]] == latents["label"][half:]).mean())


@pytest.mark.parametrize("modality", ["image", "text", "audio"])
def test_single_modality_ceilings_match_a_majority_vote_on_sampled_patients(many_latents,
                                                                           modality):
    """An independent path: frequencies counted on the sampler's output, not the tables."""
    names = MODALITY_LATENTS[modality]
    assert _majority_vote_accuracy(many_latents, names) == pytest.approx(
        DOCUMENTED_CEILINGS[modality], abs=0.006)


def test_bayes_rule_on_sampled_patients_reaches_the_fusion_ceiling(many_latents):
    posterior = bayes_posterior(many_latents)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    accuracy = (posterior.argmax(axis=1) == many_latents["label"]).mean()
    assert accuracy == pytest.approx(DOCUMENTED_CEILINGS["image+text+audio"], abs=0.004)


@pytest.mark.parametrize("records", ["image+text", "image+audio", "text+audio",
                                     "image+text+audio"])
def test_the_ceilings_of_several_records_match_the_bayes_rule_on_sampled_patients(
        many_latents, records):
    """The exact Bayes rule of each marginal, applied to sampled patients, reaches its ceiling
    within four standard errors (text + audio, 0.7600, is the robust tier's bound)."""
    posterior = bayes_posterior(many_latents, tuple(records.split("+")))
    correct = posterior.argmax(axis=1) == many_latents["label"]
    ceiling = DOCUMENTED_CEILINGS[records]
    standard_error = np.sqrt(ceiling * (1 - ceiling) / len(correct))
    assert abs(correct.mean() - ceiling) < 4 * standard_error, (records, correct.mean())


def _patient(**overrides):
    latent = {name: np.array([0]) for name in LATENT_NAMES}
    latent.update({name: np.array([value]) for name, value in overrides.items()})
    return latent


def test_only_image_and_text_together_tell_a_persisting_from_a_new_opacity():
    """Which zone is named, or which zone is opaque, says nothing alone; the match decides."""
    same = _patient(opacity_zone=1, prior_zone=1)
    other = _patient(opacity_zone=3, prior_zone=1)
    moved = _patient(opacity_zone=3, prior_zone=3)
    text_only, image_only = ("text",), ("image",)
    np.testing.assert_allclose(bayes_posterior(same, text_only), bayes_posterior(other, text_only))
    np.testing.assert_allclose(bayes_posterior(same, image_only),
                               bayes_posterior(moved, image_only))
    tb, pneumonia = CLASS_NAMES.index("tuberculosis-like"), CLASS_NAMES.index("pneumonia")
    assert bayes_posterior(same, ("image", "text"))[0].argmax() == tb
    assert bayes_posterior(other, ("image", "text"))[0].argmax() == pneumonia


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split": "dev"}, "split must be one of"),
    ({"n_patients": 0}, "n_patients must be a positive integer"),
    ({"n_patients": 2.5}, "n_patients must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_load_clinic_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_clinic(**kwargs)


def test_helpers_reject_bad_arguments(small_train):
    with pytest.raises(ValueError, match="reports must be a list of strings"):
        bag_of_words("No fever.")
    with pytest.raises(ValueError, match="report must be a string"):
        report_tokens(["No fever."])
    with pytest.raises(ValueError, match="modalities must be a non-empty subset"):
        bayes_posterior(small_train.latents, ("smell",))
    with pytest.raises(ValueError, match="latents lacks"):
        bayes_posterior({"sound": np.array([0])})
    with pytest.raises(ValueError, match=r"indices must be in \[0, 1200\)"):
        small_train.subset([1200])
    with pytest.raises(ValueError, match="rng must be a numpy Generator"):
        sample_latents(10, rng=0)
    with pytest.raises(ValueError, match="n_patients must be a positive integer"):
        sample_latents(0, np.random.default_rng(0))
