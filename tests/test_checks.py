"""Each capstone checker (exercises 1-5) on a correct answer, wrong answers, a crash and a stub.

The tiers, the final comparison and the honest choice of a recipe are tested in
``tests/test_checks_capstone_tiers.py``.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks
from course_lib.checks import (
    CheckResult,
    check_comparison,
    check_evaluation,
    check_missing_modality,
    check_model,
    check_tensors,
    check_training,
)
from course_lib.data.clinic import bag_of_words, load_clinic
from course_lib.fusion import zero_fill
from course_lib.train import History, train


def stub(*args):
    raise NotImplementedError("exercise: write this function")


def crashing(*args):
    return torch.ones(3, 4) @ torch.ones(5, 2)  # a shape error, as learners make them


def assert_verdict(result, capsys, passed, *phrases):
    """The result object and the printed message agree, and the message says ``phrases``."""
    printed = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result.passed is passed
    assert result.message in printed
    for phrase in phrases:
        assert phrase in result.message, result.message
    assert result.message.startswith("Well done!") is passed
    return result


# ----------------------------------------------------------------------------- exercise 1
@pytest.fixture(scope="module")
def clinic_pair():
    return load_clinic("train", n_patients=160, seed=1), load_clinic("test", n_patients=48, seed=1)


def raw_features(data, negation_aware=True):
    spectrum = torch.stft(data.waveforms, n_fft=128, hop_length=64, window=torch.hann_window(128),
                          return_complex=True).abs()
    return {"image": F.avg_pool2d(data.images, 4).flatten(1),
            "text": bag_of_words(data.reports, negation_aware=negation_aware),
            "audio": torch.log(spectrum.mean(-1) + 1e-6)}


def standardise(train_raw, test_raw):
    stats = {m: (x.mean(0), x.std(0) + 1e-6) for m, x in train_raw.items()}
    return tuple({m: (x - stats[m][0]) / stats[m][1] for m, x in part.items()}
                 for part in (train_raw, test_raw))


def good_tensors(train_data, test_data):
    return standardise(raw_features(train_data), raw_features(test_data))


def leaky_tensors(train_data, test_data):
    train_features, _ = good_tensors(train_data, test_data)
    return train_features, standardise(raw_features(test_data), raw_features(test_data))[0]


def negation_blind_tensors(train_data, test_data):
    return standardise(raw_features(train_data, False), raw_features(test_data, False))


def image_not_flattened(train_data, test_data):
    train_features, test_features = good_tensors(train_data, test_data)
    return dict(train_features, image=train_data.images), test_features


def unstandardised_test(train_data, test_data):
    train_features, _ = good_tensors(train_data, test_data)
    return train_features, raw_features(test_data)


def never_standardised(train_data, test_data):
    return raw_features(train_data), raw_features(test_data)


def label_column_left_in(train_data, test_data):
    def raw(data):  # a table of every column of the records, the diagnosis included
        features = raw_features(data)
        return dict(features, text=torch.cat([features["text"], data.labels[:, None].float()],
                                             dim=1))

    return standardise(raw(train_data), raw(test_data))


def one_hot_labels_in_image(train_data, test_data):
    def raw(data):
        features = raw_features(data)
        return dict(features, image=torch.cat([features["image"],
                                               F.one_hot(data.labels, 4).float()], dim=1))

    return standardise(raw(train_data), raw(test_data))


def audio_pooled_over_mel_bands(train_data, test_data):
    def raw(data):
        spectrum = torch.stft(data.waveforms, n_fft=128, hop_length=64,
                              window=torch.hann_window(128), return_complex=True).abs()
        return dict(raw_features(data), audio=torch.log(spectrum.mean(1) + 1e-6))  # (N, T)

    return standardise(raw(train_data), raw(test_data))


def test_tensors_pass_and_hand_back_the_features(clinic_pair, capsys):
    result = check_tensors(good_tensors, *clinic_pair)
    assert_verdict(result, capsys, True, "160 training and 48 test patients", "negations kept",
                   "both splits standardised", "where the breath cycle starts", "no label")
    train_features, test_features = result.value
    assert train_features["text"].shape == (160, 58) and test_features["image"].shape == (48, 64)


@pytest.mark.parametrize(("answer", "phrase"), [
    (leaky_tensors, "TRAINING features only"),
    (negation_blind_tensors, "the negation is lost"),
    (image_not_flattened, "train_features['image'] has shape (160, 1, 32, 32)"),
    (lambda train, test: good_tensors(train, test)[0], "should return two dicts"),
    (lambda train, test: ({"image": torch.zeros(160, 3)}, {}), "lacks ['text', 'audio']"),
    (unstandardised_test, "standardise the test features too"),
    (never_standardised, "train_features['image'] is not standardised"),
    (label_column_left_in, "column 58 of train_features['text'] tells the diagnosis"),
    (one_hot_labels_in_image, "the 'image' features alone predict the diagnosis"),
    (audio_pooled_over_mel_bands, "Summarise each mel band over TIME"),
])
def test_tensors_wrong_answers_get_precise_hints(clinic_pair, capsys, answer, phrase):
    assert_verdict(check_tensors(answer, *clinic_pair), capsys, False, "Not yet:", phrase)


def test_tensors_nan_and_wrong_dtype_are_caught(clinic_pair, capsys):
    def with_nan(train_data, test_data):
        train_features, test_features = good_tensors(train_data, test_data)
        train_features["audio"][3, 0] = float("nan")
        return train_features, test_features

    def as_float64(train_data, test_data):
        train_features, test_features = good_tensors(train_data, test_data)
        return dict(train_features, text=train_features["text"].double()), test_features

    assert_verdict(check_tensors(with_nan, *clinic_pair), capsys, False, "NaN or inf")
    assert_verdict(check_tensors(as_float64, *clinic_pair), capsys, False, "torch.float32")


def test_tensors_exception_and_stub(clinic_pair, capsys):
    assert_verdict(check_tensors(crashing, *clinic_pair), capsys, False,
                   "crashing raised RuntimeError", "mat1 and mat2", "line")
    assert_verdict(check_tensors(stub, *clinic_pair), capsys, False, "Not implemented yet",
                   "stub raised NotImplementedError (exercise: write this function)")


# ----------------------------------------------------------------------------- exercise 2
class ConcatFusion(nn.Module):
    def __init__(self, input_dims, num_classes, ignore=None):
        super().__init__()
        self.names = [m for m in input_dims if m != ignore]
        self.net = nn.Sequential(nn.Linear(sum(input_dims[m] for m in self.names), 16), nn.GELU(),
                                 nn.Linear(16, num_classes))

    def forward(self, features):
        return self.net(torch.cat([features[m] for m in self.names], dim=1))


class NamedKeysFusion(ConcatFusion):
    """Built from input_dims, but its forward names the three records."""

    def forward(self, features):
        return self.net(torch.cat([features["image"], features["text"], features["audio"]],
                                  dim=1))


def test_model_passes_when_built_from_input_dims(capsys):
    result = check_model(lambda dims, classes: ConcatFusion(dims, classes))
    assert_verdict(result, capsys, True, "ConcatFusion", "uses every modality")


@pytest.mark.parametrize(("answer", "phrase"), [
    (lambda dims, classes: ConcatFusion(dims, classes, ignore="audio"), "it ignores audio"),
    (lambda dims, classes: ConcatFusion(dims, 10), "(8, 10); expected class scores"),
    (lambda dims, classes: ConcatFusion({"image": 64, "text": 58, "audio": 96}, classes),
     "take the widths from input_dims"),
    (lambda dims, classes: "a model", "should return a torch nn.Module"),
    (lambda dims, classes: ConcatFusion({m: dims[m] for m in ("image", "text", "audio")},
                                        classes), "raised KeyError: 'image'"),
    (lambda dims, classes: NamedKeysFusion(dims, classes), "raised KeyError: 'image'"),
    (lambda dims, classes: nn.Linear(2000, 2000), "parameters; keep it under"),
])
def test_model_wrong_answers_get_precise_hints(capsys, answer, phrase):
    assert_verdict(check_model(answer), capsys, False, phrase)


def test_model_is_also_built_for_one_record(capsys):
    hard_coded = lambda dims, classes: ConcatFusion(  # noqa: E731
        {m: dims[m] for m in ("image", "text", "audio")}, classes)
    result = assert_verdict(check_model(hard_coded), capsys, False, "raised KeyError: 'image'",
                            "builds your model for one record, {'audio': 5}",
                            "never name them")
    assert "take the modalities from the dict itself" in result.message
    assert_verdict(check_model(lambda dims, classes: NamedKeysFusion(dims, classes)), capsys,
                   False, "with one record, {'audio': 5}", "raised KeyError: 'image'")


def test_model_exception_and_stub(capsys):
    assert_verdict(check_model(crashing), capsys, False, "crashing raised RuntimeError")
    assert_verdict(check_model(stub), capsys, False, "Not implemented yet")


# ----------------------------------------------------------------------------- exercise 3
@pytest.fixture(scope="module")
def separable():
    """Features that reveal the label (plus noise): any working training loop fits them."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (256,), generator=generator)
    onehot = F.one_hot(labels, 4).float()
    features = {m: torch.cat([onehot, torch.randn(256, width, generator=generator)], dim=1)
                for m, width in (("image", 6), ("text", 4), ("audio", 2))}
    return features, labels


def good_training(model, features, labels):
    names = list(features)

    def loss_of_batch(batch):
        batch_features = dict(zip(names, batch[:-1], strict=True))
        if hasattr(model, "loss"):
            return model.loss(batch_features, batch[-1])
        return F.cross_entropy(model(batch_features), batch[-1])

    return train(model, loss_of_batch, [features[m] for m in names] + [labels], epochs=15,
                 batch_size=32, lr=1e-2, progress=False)


def build(dims, classes):
    return ConcatFusion(dims, classes)


def test_training_passes_and_hands_back_the_trained_model(separable, capsys):
    result = check_training(good_training, build, *separable)
    assert_verdict(result, capsys, True, "The loss fell from", "of the training patients")
    assert isinstance(result.value, ConcatFusion) and not result.value.training


def test_training_wrong_answers_get_precise_hints(separable, capsys):
    def no_steps(model, features, labels):
        return History(losses=[1.386] * 50)

    def nan_loss(model, features, labels):
        return [1.4, 1.2, float("nan"), 0.9]

    def exploding(model, features, labels):
        for p in model.parameters():
            nn.init.constant_(p, float("inf"))
        return good_training(model, features, labels)

    assert_verdict(check_training(no_steps, build, *separable), capsys, False,
                   "the loss hardly fell (from 1.386 to 1.386)")
    assert "Train longer" not in capsys.readouterr().out
    assert_verdict(check_training(nan_loss, build, *separable), capsys, False,
                   "the loss became nan at step 2", "Lower the learning rate")
    assert_verdict(check_training(exploding, build, *separable), capsys, False,
                   "raised FloatingPointError", "lower the learning rate")
    assert_verdict(check_training(lambda m, f, y: "done", build, *separable), capsys, False,
                   "should return the History")


def test_training_mistakes_that_crash_or_mislead_later_cells(separable, capsys):
    def ignores_own_loss(model, features, labels):
        names = list(features)
        return train(model, lambda batch: F.cross_entropy(
            model(dict(zip(names, batch[:-1], strict=True))), batch[-1]),
            [features[m] for m in names] + [labels], epochs=15, batch_size=32, lr=1e-2,
            progress=False)

    def hard_coded_keys(model, features, labels):
        names = ["image", "text", "audio"]  # breaks on a model of one record
        return train(model, lambda batch: F.cross_entropy(
            model(dict(zip(names, batch[:-1], strict=True))), batch[-1]),
            [features[m] for m in names] + [labels], epochs=15, batch_size=32, lr=1e-2,
            progress=False)

    def learning_rate_50(model, features, labels):
        names = list(features)

        def loss_of_batch(batch):
            batch_features = dict(zip(names, batch[:-1], strict=True))
            if hasattr(model, "loss"):
                return model.loss(batch_features, batch[-1])
            return F.cross_entropy(model(batch_features), batch[-1])

        return train(model, loss_of_batch, [features[m] for m in names] + [labels], epochs=15,
                     batch_size=32, lr=50.0, progress=False)

    assert_verdict(check_training(ignores_own_loss, build, *separable), capsys, False,
                   "ignores the model's own loss method")
    result = assert_verdict(check_training(hard_coded_keys, build, *separable), capsys, False,
                            "raised KeyError", "a model of one record ('text' only)",
                            "instead of naming them")
    generator = torch.Generator().manual_seed(0)  # a label signal under noise: not separable
    labels = separable[1]
    noisy = {m: torch.cat([F.one_hot(labels, 4) + torch.randn(len(labels), 4,
                                                              generator=generator),
                           torch.randn(len(labels), width, generator=generator)], dim=1)
             for m, width in (("image", 6), ("text", 4), ("audio", 2))}
    assert check_training(good_training, build, noisy, labels).passed
    result = assert_verdict(check_training(learning_rate_50, build, noisy, labels), capsys,
                            False, "The learning rate is too large")
    assert "Train longer" not in result.message and "more epochs" not in result.message


def test_training_needs_the_earlier_exercises(separable, capsys):
    assert_verdict(check_training(good_training, build, None, separable[1]), capsys, False,
                   "Finish exercise 1 first")
    assert_verdict(check_training(good_training, stub, *separable), capsys, False,
                   "Finish exercise 2 first", "Not implemented yet")


def test_training_exception_and_stub(separable, capsys):
    assert_verdict(check_training(crashing, build, *separable), capsys, False,
                   "crashing raised RuntimeError")
    assert_verdict(check_training(stub, build, *separable), capsys, False, "Not implemented yet")


# ----------------------------------------------------------------------------- exercise 4
def good_evaluate(model, features, labels):
    model.eval()
    wanted = getattr(model, "input_dims", features)
    with torch.no_grad():
        scores = model({m: x for m, x in features.items() if m in wanted})
    return (scores.argmax(dim=1) == labels).float().mean().item()


def evaluate_by_input_dims(model, features, labels):
    """As the chapter's later cells do: only model.input_dims, no fallback."""
    model.eval()
    with torch.no_grad():
        scores = model({m: features[m] for m in model.input_dims})
    return (scores.argmax(dim=1) == labels).float().mean().item()


def only_the_modalities(model, features):
    return {m: x for m, x in features.items() if m in model.input_dims}


def test_evaluation_passes_for_a_correct_accuracy(capsys):
    assert_verdict(check_evaluation(good_evaluate), capsys, True, "evaluation mode")
    assert "torch.no_grad" not in capsys.readouterr().out


def test_evaluation_passes_a_learner_that_reads_model_input_dims(capsys):
    assert_verdict(check_evaluation(evaluate_by_input_dims), capsys, True, "evaluation mode")


def test_evaluation_catches_features_the_model_was_not_built_for(capsys):
    def every_key(model, features, labels):
        model.eval()
        with torch.no_grad():
            return (model(features).argmax(dim=1) == labels).float().mean().item()

    def named_records(model, features, labels):
        model.eval()
        with torch.no_grad():
            scores = model({m: features[m] for m in ("image", "text", "audio")})
        return (scores.argmax(dim=1) == labels).float().mean().item()

    result = assert_verdict(check_evaluation(every_key), capsys, False, "raised ValueError",
                            "features has modality 'image*text', but the model was built for",
                            "m in model.input_dims")
    assert "a model built for ['image', 'text', 'audio']" in result.message
    assert_verdict(check_evaluation(named_records), capsys, False,
                   "features has modality 'image', but the model was built for "
                   "['text', 'audio']", "m in model.input_dims")


def test_evaluation_wrong_answers_get_precise_hints(capsys):
    def forgets_eval(model, features, labels):
        with torch.no_grad():
            scores = model(only_the_modalities(model, features))
        return (scores.argmax(dim=1) == labels).float().mean().item()

    def percentage(model, features, labels):
        return 100 * good_evaluate(model, features, labels)

    def max_not_argmax(model, features, labels):
        model.eval()
        scores = model(only_the_modalities(model, features))
        return (scores.max(dim=1).values == labels).float().mean().item()

    def with_gradients(model, features, labels):
        model.eval()
        return (model(only_the_modalities(model, features)).argmax(dim=1) == labels).float().mean()

    assert_verdict(check_evaluation(forgets_eval), capsys, False, "Call model.eval()")
    assert_verdict(check_evaluation(percentage), capsys, False, "a percentage")
    assert_verdict(check_evaluation(max_not_argmax), capsys, False, "arg-max over classes")
    assert_verdict(check_evaluation(lambda m, f, y: "high"), capsys, False, "as a number")
    assert_verdict(check_evaluation(with_gradients), capsys, True, "Tip: wrap the predictions")


def test_evaluation_exception_and_stub(capsys):
    assert_verdict(check_evaluation(crashing), capsys, False, "crashing raised RuntimeError")
    assert_verdict(check_evaluation(stub), capsys, False, "Not implemented yet")


# ----------------------------------------------------------------------------- exercise 5
def good_without(model, features, labels, missing):
    kept = {m: x for m, x in features.items() if m != missing}
    if getattr(model, "requires_all_modalities", False):
        kept = zero_fill(kept, model.input_dims)
    return good_evaluate(model, kept, labels)


def drops_without_zero_fill(model, features, labels, missing):
    return good_evaluate(model, {m: x for m, x in features.items() if m != missing}, labels)


def zero_filled_without(model, features, labels, missing):
    kept = {m: (torch.zeros_like(x) if m == missing else x) for m, x in features.items()}
    return good_evaluate(model, kept, labels)


def test_the_voting_cases_tell_every_missing_modality_apart():
    features, labels = checks._voting_case(2)
    accuracies = [checks._reference_accuracy(features, labels)] + [
        checks._reference_accuracy({m: x for m, x in features.items() if m != missing}, labels)
        for missing in checks.MODALITIES]
    assert len({round(a, 6) for a in accuracies}) == 4
    assert checks._reference_accuracy(*checks._voting_case(0)) != checks._reference_accuracy(
        *checks._voting_case(1))


@pytest.mark.parametrize("answer", [good_without, zero_filled_without])
def test_missing_modality_passes_by_dropping_or_zero_filling(capsys, answer):
    assert_verdict(check_missing_modality(answer), capsys, True, "exactly the modality",
                   "gives zeros to a model that needs every input")


def test_missing_modality_wrong_answers_get_precise_hints(capsys):
    def drops_nothing(model, features, labels, missing):
        return good_evaluate(model, features, labels)

    def mutates(model, features, labels, missing):
        features.pop(missing)
        return good_evaluate(model, features, labels)

    def drops_image_always(model, features, labels, missing):
        return good_without(model, features, labels, "image")

    assert_verdict(check_missing_modality(drops_nothing), capsys, False,
                   "the model still received 'image'")
    assert_verdict(check_missing_modality(mutates), capsys, False, "changed the features dict")
    assert_verdict(check_missing_modality(drops_image_always), capsys, False,
                   "without 'text' the accuracy should be")
    assert_verdict(check_missing_modality(drops_without_zero_fill), capsys, False,
                   "raised ValueError", "zero_fill(features, model.input_dims)")


def test_missing_modality_exception_and_stub(capsys):
    assert_verdict(check_missing_modality(crashing), capsys, False, "raised RuntimeError")
    assert_verdict(check_missing_modality(stub), capsys, False, "Not implemented yet")


# ----------------------------------------------------------------------------- comparison
def test_comparison_passes_only_when_every_baseline_is_beaten(capsys):
    baselines = {"text alone": 0.64, "late fusion": 0.80}
    assert_verdict(check_comparison(0.86, baselines), capsys, True, "by 0.060")
    assert_verdict(check_comparison(0.79, baselines), capsys, False, "does not beat late fusion")
    assert_verdict(check_comparison(None, baselines), capsys, False, "Finish exercises 1-4")


# ----------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("checker", [check_tensors, check_model, check_training,
                                     check_evaluation, check_missing_modality, check_comparison])
def test_checkers_never_crash_on_garbage(capsys, checker):
    result = checker(None, None, None, None) if checker in (check_tensors, check_training) \
        else checker(None, {}) if checker is check_comparison else checker(None)
    assert isinstance(result, CheckResult) and not result.passed
    assert result.message in capsys.readouterr().out


def test_a_non_function_is_named_in_the_hint(capsys):
    assert_verdict(check_model(ConcatFusion({"image": 1}, 2)), capsys, False,
                   "expects a function, but got ConcatFusion")
