"""Robustness of course_lib.data: masks are not indices, unknown split names are not the
training split, sizes that would fill the memory fail at once, every record's fields agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_robustness_support import assert_rejects, bad_int, covers, not_a_number, not_a_tensor

from course_lib.data.clinic import (
    CLASS_NAMES,
    LATENT_NAMES,
    ClinicData,
    bag_of_words,
    bayes_ceilings,
    bayes_posterior,
    latent_indices,
    load_clinic,
    prior_zone_probs,
    report_tokens,
    sample_latents,
    validation_rows,
)
from course_lib.data.digits_av import (
    DigitsAV,
    add_noise_at_snr,
    load_digits_av,
    load_mri_slice,
    split_clip_indices,
    split_image_indices,
)
from course_lib.data.interaction import DigitMatch, MatchPairs, load_digit_match, sample_match_pairs
from course_lib.data.mosaic import DigitMosaics, make_digit_mosaics, mosaic_image_indices

# Names that are close to a split but are not one: before, any of them gave the training split.
NOT_A_SPLIT = st.sampled_from(["val", "Test", "TEST", "training", "", "valid", None, 0, True,
                               ("test",), ["test"]])


@pytest.fixture(scope="module")
def clinic() -> ClinicData:
    return load_clinic("test", n_patients=64, seed=0)


# ----------------------------------------------------------------------------- the examples
@covers(ClinicData.subset)
def test_subset_reads_a_bool_mask_as_a_mask_not_as_indices(clinic):
    mask = clinic.labels == 0
    # Before: the mask became 64 indices 0/1, i.e. copies of patients 0 and 1.
    for form in (mask, mask.numpy(), mask.tolist()):
        chosen = clinic.subset(form)
        assert len(chosen) == int(mask.sum())
        assert torch.equal(chosen.images, clinic.images[mask])
        assert chosen.reports == [r for r, keep in zip(clinic.reports, mask) if keep]
    assert_rejects(clinic.subset, "indices", mask[:-1])  # a mask needs one entry per patient
    assert_rejects(clinic.subset, "indices", torch.tensor([0.0, 1.0]))


@covers(split_image_indices, split_clip_indices, load_digits_av, mosaic_image_indices,
        make_digit_mosaics, load_clinic, load_digit_match)
@given(NOT_A_SPLIT)
def test_split_helpers_refuse_a_name_that_is_not_a_split(split):
    for helper in (split_image_indices, split_clip_indices, lambda s: load_digits_av(s),
                   lambda s: load_clinic(s, n_patients=8), lambda s: load_digit_match(s)):
        assert_rejects(helper, "split", split)
    if split != "val":  # the mosaics' validation split is "val"
        assert_rejects(mosaic_image_indices, "split", split)
        assert_rejects(make_digit_mosaics, "split", split, 2, 0)
    assert_rejects(mosaic_image_indices, "split", "validation")


@covers(load_clinic, sample_latents, validation_rows)
@given(st.sampled_from([10**5, 10**6, 10**9, 2**62]))
def test_load_clinic_refuses_more_patients_than_fit_in_memory(n_patients):
    # Before: 10**6 patients started rendering 5 GB of images and sounds.
    for split in ("train", "fit", "validation"):
        assert_rejects(load_clinic, "n_patients", split, n_patients=n_patients)
    assert_rejects(validation_rows, "n_train", n_patients * 100)
    assert_rejects(sample_latents, "n_patients", n_patients * 100, np.random.default_rng(0))


# ----------------------------------------------------------------------------- clinic
@covers(load_clinic, ClinicData)
@given(st.sampled_from(["n_patients", "seed"]), st.data())
def test_load_clinic_refuses_bad_sizes(argument, data):
    value = data.draw((bad_int(1) if argument == "n_patients" else bad_int(0)).filter(
        lambda v: v is not None))  # None: the default size
    assert_rejects(load_clinic, argument, "test", **{argument: value})


@covers(ClinicData, ClinicData.subset)
@given(st.sampled_from(["images", "waveforms", "labels", "reports"]))
def test_clinic_records_must_agree_on_the_number_of_patients(clinic, field):
    fields = {f.name: getattr(clinic, f.name) for f in dataclasses.fields(clinic)}
    fields[field] = fields[field][:-1]
    assert_rejects(lambda: ClinicData(**fields), field)
    assert len(clinic.subset([])) == 0 and len(clinic.subset(range(3))) == 3


@covers(prior_zone_probs)
@given(st.sampled_from(["label", "opacity_zone"]), st.data())
def test_prior_zone_probs_refuses_out_of_range_ids_and_sums_to_one(argument, data):
    arguments = {"label": 0, "opacity_zone": 0}
    arguments[argument] = data.draw(bad_int(0, {"label": 3, "opacity_zone": 4}[argument]))
    assert_rejects(prior_zone_probs, argument, **arguments)
    label, zone = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 4))
    assert prior_zone_probs(label, zone).sum() == pytest.approx(1.0)


@covers(report_tokens, bag_of_words)
@given(st.one_of(st.none(), st.integers(), st.just(["no fever"]), st.just(b"fever")))
def test_report_helpers_refuse_what_is_not_text(report):
    assert_rejects(report_tokens, "report", report)
    assert_rejects(bag_of_words, "reports", "No fever.")  # one string is not a list of reports
    assert_rejects(bag_of_words, "reports", np.array(["fever"]))
    assert_rejects(report_tokens, "negation_aware", "fever", negation_aware="yes")
    counts = bag_of_words(["No fever. Reports fever."], negation_aware=False)
    assert counts.sum() >= 2 and bag_of_words([]).shape[0] == 0


@covers(latent_indices, bayes_posterior, bayes_ceilings)
@given(st.sampled_from(LATENT_NAMES), st.sampled_from(["missing", "float", "range", "short"]))
def test_latents_are_checked_by_name(clinic, name, damage):
    latents = dict(clinic.latents)
    if damage == "missing":
        del latents[name]
    elif damage == "float":
        latents[name] = latents[name].astype(float)
    elif damage == "range":
        latents[name] = latents[name] + 7
    else:
        latents[name] = latents[name][:-1]
    argument = "latents" if damage in ("missing", "short") else name
    assert_rejects(latent_indices, argument, latents)
    assert_rejects(bayes_posterior, argument, latents)
    assert_rejects(bayes_posterior, "modalities", clinic.latents, "image")
    posterior = bayes_posterior(clinic.latents, ("image",))
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    assert set(bayes_ceilings()) >= {"image", "text", "audio", "decision-level"}
    assert posterior.shape == (len(clinic), len(CLASS_NAMES))


# ----------------------------------------------------------------------------- digits
@covers(load_digits_av, DigitsAV, load_mri_slice)
@given(st.sampled_from(["seed", "image_noise", "snr_db", "max_shift_s", "size"]), st.data())
def test_digit_loaders_refuse_bad_settings(argument, data):
    if argument == "size":
        assert_rejects(load_mri_slice, "size", data.draw(bad_int(1, 4096)))
        return
    bad = {"seed": bad_int(0), "image_noise": st.one_of(not_a_number(), st.floats(-9, -0.1)),
           "snr_db": not_a_number().filter(lambda v: v is not None),
           "max_shift_s": st.one_of(not_a_number(), st.floats(1, 9))}[argument]
    assert_rejects(load_digits_av, argument, "test", **{argument: data.draw(bad)})


@covers(DigitsAV)
@settings(max_examples=5)
@given(st.sampled_from(["images", "waveforms", "labels", "captions", "shifts"]))
def test_digit_records_must_agree_on_n(field):
    data = load_digits_av("test")
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    fields[field] = fields[field][:-1]
    assert_rejects(lambda: DigitsAV(**fields), field)
    assert len(DigitsAV(**{f.name: getattr(data, f.name) for f in dataclasses.fields(data)}))


@covers(add_noise_at_snr)
@given(st.sampled_from(["waveforms", "lengths", "shifts", "snr_db", "generator"]))
def test_add_noise_at_snr_checks_its_arguments_and_hits_the_snr(argument):
    arguments = {"waveforms": np.ones((2, 100), np.float32), "lengths": np.array([50, 100]),
                 "shifts": np.array([0, 0]), "snr_db": 10.0,
                 "generator": torch.Generator().manual_seed(0)}
    arguments[argument] = {"waveforms": np.ones((2,)), "lengths": np.array([0, 100]),
                           "shifts": np.array([60, 0]), "snr_db": float("nan"),
                           "generator": 0}[argument]
    assert_rejects(add_noise_at_snr, argument if argument != "shifts" else "lengths",
                   **arguments)
    noisy = add_noise_at_snr(np.ones((1, 100), np.float32), np.array([100]), np.array([0]),
                             0.0, torch.Generator().manual_seed(0))
    assert np.mean((noisy - 1) ** 2) == pytest.approx(1.0, rel=1e-4)  # 0 dB: noise = speech


@covers(make_digit_mosaics, DigitMosaics)
@given(st.sampled_from(["n", "seed"]), st.data())
def test_mosaics_refuse_bad_sizes_and_keep_their_fields_aligned(argument, data):
    arguments = {"split": "val", "n": 3, "seed": 0}
    arguments[argument] = data.draw(st.one_of(bad_int(1 if argument == "n" else 0),
                                              st.just(10**9) if argument == "n"
                                              else st.nothing()))
    assert_rejects(make_digit_mosaics, argument, **arguments)
    mosaics = make_digit_mosaics("val", 3, 0)
    assert torch.equal(mosaics.answers, mosaics.digits[torch.arange(3), mosaics.questions])
    assert_rejects(lambda: dataclasses.replace(mosaics, answers=mosaics.answers[:2]), "answers")


@covers(sample_match_pairs, MatchPairs, MatchPairs.gather, DigitMatch)
@given(st.sampled_from(["num_pairs", "seed", "num_classes"]), st.data())
def test_match_pairs_refuse_bad_sizes_and_gather_checks_features(argument, data):
    digits = np.arange(10)
    arguments = {"image_digits": digits, "audio_digits": digits, "num_pairs": 4, "seed": 0}
    arguments[argument] = data.draw({"num_pairs": st.one_of(bad_int(1), st.just(3),
                                                            st.just(10**9)),
                                     "seed": bad_int(0), "num_classes": bad_int(2)}[argument])
    assert_rejects(sample_match_pairs, argument, **arguments)
    pairs = sample_match_pairs(digits, digits, num_pairs=4, seed=0)
    gathered = pairs.gather(np.eye(10), torch.eye(10))
    assert torch.equal(gathered["image"].argmax(1), pairs.image_index)
    assert_rejects(pairs.gather, "image_features", data.draw(not_a_tensor()), torch.eye(10))
    assert_rejects(pairs.gather, "audio_features", torch.eye(10), torch.eye(2))
    assert_rejects(lambda: dataclasses.replace(pairs, labels=pairs.labels[:1]), "labels")
    assert_rejects(lambda: DigitMatch(torch.zeros(4, 1, 8, 8), torch.zeros(4, 16), 16000,
                                      "pairs"), "pairs")
