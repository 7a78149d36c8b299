"""The capstone's tiers (core, stretch, robust, honest) and the final comparison, each on a
passing and a failing model, on leaks, and on the mistakes a learner makes.

The models are small fixed rules on synthetic records whose accuracy is known by
construction (a rule, with a known fraction of labels flipped), so that each verdict is
decided by the checker, not by an accident of training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from checker_verdicts import stub, verdict_of
from torch import nn

from course_lib.checks import (
    REFERENCE_RECIPE,
    ROBUST_MIN_ACCURACY,
    STRETCH_MIN_ACCURACY,
    check_comparison,
    check_core,
    check_honest,
    check_robust,
    check_stretch,
    train_baselines,
)
from course_lib.data.clinic import DOCUMENTED_CEILINGS
from course_lib.fusion import EarlyFusion, LateFusion
from course_lib.train import train


def records(n, seed, flip, rule="xor"):
    """Three records of bits a (image), b (text), c (audio); the label is a rule of them with a
    fraction ``flip`` of the labels moved to another class (so the rule's accuracy is 1 - flip).

    rule "xor": label = (a xor b) + 2 c, which no decision-level combination can read;
    rule "redundant": label = b + 2 c, with the image a copy of b (the film can go missing).
    """
    generator = torch.Generator().manual_seed(seed)
    a, b, c = (torch.randint(0, 2, (n,), generator=generator) for _ in range(3))
    if rule == "redundant":
        a = b
    truth = ((a ^ b) if rule == "xor" else b) + 2 * c
    flipped = torch.rand(n, generator=generator) < flip
    labels = torch.where(flipped, (truth + torch.randint(1, 4, (n,), generator=generator)) % 4,
                         truth)
    features = {name: F.one_hot(bit, 2).float() + 0.05 * torch.randn(n, 2, generator=generator)
                for name, bit in (("image", a), ("text", b), ("audio", c))}
    return features, labels


class Rule(nn.Module):
    """A fixed model that applies a rule to the records' bits; without the film it guesses it
    from the report (``redundant``) or guesses 0 for the film's bit."""

    def __init__(self, rule="xor", use=("image", "text", "audio")):
        super().__init__()
        self.rule, self.use = rule, use
        self.scale = nn.Parameter(torch.tensor(5.0))

    def forward(self, features):
        bits = {m: features[m].argmax(dim=1) for m in features if m in self.use}
        b = bits.get("text", torch.zeros_like(next(iter(bits.values()))))
        a = bits.get("image", b if self.rule == "redundant" else torch.zeros_like(b))
        c = bits.get("audio", torch.zeros_like(b))
        if self.rule == "redundant":
            label = a + 2 * c
        else:
            label = (a ^ b) + 2 * c
        return self.scale * F.one_hot(label, 4).float()


class Noise(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, features):
        return self.weight * torch.randn(len(next(iter(features.values()))), 4)


# ----------------------------------------------------------------------------- the baselines
def test_the_baselines_are_trained_by_the_course_with_the_reference_recipe():
    features, labels = records(256, 0, 0.0, rule="redundant")
    baselines = train_baselines(features, labels)
    assert list(baselines) == ["image alone", "text alone", "audio alone", "late fusion"]
    assert isinstance(baselines["late fusion"], LateFusion)
    assert all(isinstance(baselines[f"{m} alone"], EarlyFusion) for m in features)
    assert baselines["text alone"].input_dims == {"text": 2}
    assert not any(model.training for model in baselines.values())
    assert REFERENCE_RECIPE["epochs"] == 40 and REFERENCE_RECIPE["hidden_dim"] == 128
    with torch.no_grad():  # text and audio decide the label: late fusion learns it
        predicted = baselines["late fusion"](features).argmax(dim=1)
    assert (predicted == labels).float().mean() > 0.95


def test_the_baselines_see_only_the_three_records_and_can_add_the_reference_early_fusion():
    features, labels = records(64, 0, 0.0)
    crossed = dict(features, **{"image*text": features["image"] * features["text"]})
    baselines = train_baselines(crossed, labels, include_early=True)
    assert list(baselines)[-1] == "early fusion (reference)"
    assert all("image*text" not in model.input_dims for model in baselines.values())
    alone = train_baselines({"text": features["text"]}, labels)["text alone"]
    torch.testing.assert_close(alone.state_dict(), baselines["text alone"].state_dict())


def test_train_baselines_names_a_bad_argument():
    features, labels = records(16, 0, 0.0)
    for call, argument in [
        (lambda: train_baselines([1, 2], labels), "train_features"),
        (lambda: train_baselines(dict(features, text=features["text"][:3]), labels),
         "train_features"),
        (lambda: train_baselines(features, labels.float()), "train_labels"),
        (lambda: train_baselines(features, labels + 4), "train_labels"),
        (lambda: train_baselines(features, labels, seed=-1), "seed"),
    ]:
        try:
            call()
        except ValueError as error:
            assert argument in str(error)
        else:
            raise AssertionError(f"no error for a bad {argument}")


# ----------------------------------------------------------------------------- core
def core_case(flip=0.12, test_flip=None):
    train_features, train_labels = records(400, 1, flip)
    test_features, test_labels = records(300, 2, flip if test_flip is None else test_flip)
    return train_features, train_labels, test_features, test_labels


def test_core_passes_a_model_that_reads_the_records_together(capsys):
    result = verdict_of(check_core(Rule(), *core_case()), capsys, True,
                        "beats decision-level late fusion", "beyond noise",
                        "trained by the course's reference trainer")
    accuracy = result.value["accuracy"]
    assert accuracy["your model"] > accuracy["late fusion"] + 0.2
    assert set(result.value["baselines"]) == {"image alone", "text alone", "audio alone",
                                              "late fusion", "early fusion (reference)"}
    assert result.value["correct"]["your model"].shape == (300,)


def test_core_fails_a_model_of_one_record_and_says_where_to_look(capsys):
    result = verdict_of(check_core(Rule(use=("audio",)), *core_case()), capsys, False,
                        "Not yet:", "late fusion")
    assert result.value["accuracy"]["your model"] < result.value["accuracy"]["late fusion"]


def test_core_an_under_trained_model_loses_to_baselines_it_cannot_weaken(capsys):
    train_features, train_labels, test_features, test_labels = core_case()
    torch.manual_seed(0)
    weak = EarlyFusion({m: 2 for m in train_features}, 4, hidden_dim=8)
    names = list(train_features)
    train(weak, lambda batch: F.cross_entropy(weak(dict(zip(names, batch[:-1], strict=True))),
                                              batch[-1]),
          [train_features[m] for m in names] + [train_labels], epochs=1, lr=1e-4,
          progress=False)
    result = verdict_of(check_core(weak, train_features, train_labels, test_features,
                                   test_labels), capsys, False, "Not yet:", "close to chance",
                        "upstream")
    assert result.value["accuracy"]["late fusion"] > 0.4  # trained by the course, not by you


def test_core_calls_an_accuracy_above_the_ceiling_a_leak(capsys):
    verdict_of(check_core(Rule(), *core_case(test_flip=0.0)), capsys, False,
               "That is a leak", "trained on the test split, or on train + test",
               f"{DOCUMENTED_CEILINGS['image+text+audio']:.4f}")


def test_core_never_passes_what_is_not_a_trained_model(capsys):
    case = core_case()
    verdict_of(check_core(None, *case), capsys, False, "Finish exercises 1 to 3 first")
    verdict_of(check_core(Noise(), *case), capsys, False, "different scores")
    verdict_of(check_core("model", *case), capsys, False, "should be a trained torch")
    verdict_of(check_core(Rule(), None, *case[1:]), capsys, False, "Finish exercise 1 first")


# ----------------------------------------------------------------------------- stretch
def test_stretch_passes_at_the_threshold_and_fails_below_it(capsys):
    features, labels = records(1200, 3, 0.08)
    verdict_of(check_stretch(Rule(), features, labels), capsys, True,
               f"at least {STRETCH_MIN_ACCURACY:.2f}")
    features, labels = records(1200, 3, 0.15)
    result = verdict_of(check_stretch(Rule(), features, labels), capsys, False,
                        f"asks for {STRETCH_MIN_ACCURACY:.2f}", "validation patients")
    assert 0.8 < result.value < STRETCH_MIN_ACCURACY


def test_stretch_calls_train_plus_test_a_leak(capsys):
    features, labels = records(1200, 3, 0.0)  # 0.993 was accepted before: a perfect memory
    verdict_of(check_stretch(Rule(), features, labels), capsys, False, "That is a leak")


def test_stretch_never_passes_noise_nan_or_integer_scores(capsys):
    features, labels = records(1200, 3, 0.0)

    class Broken(Rule):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind

        def forward(self, features):
            scores = super().forward(features)
            return scores * float("nan") if self.kind == "nan" else scores.long()

    verdict_of(check_stretch(Noise(), features, labels), capsys, False, "different scores")
    verdict_of(check_stretch(Broken("nan"), features, labels), capsys, False, "NaN or inf")
    verdict_of(check_stretch(Broken("int"), features, labels), capsys, False, "dtype")
    verdict_of(check_stretch(None, features, labels), capsys, False, "Finish exercises")


# ----------------------------------------------------------------------------- robust
def test_robust_threshold_is_the_report_alone_ceiling_below_the_text_and_audio_one():
    assert ROBUST_MIN_ACCURACY == DOCUMENTED_CEILINGS["text"]
    assert ROBUST_MIN_ACCURACY < DOCUMENTED_CEILINGS["text+audio"] < 0.80
    assert 0.88 < STRETCH_MIN_ACCURACY < DOCUMENTED_CEILINGS["image+text+audio"]


def test_robust_passes_a_model_that_copes_without_its_film(capsys):
    features, labels = records(1200, 4, 0.25, rule="redundant")
    result = verdict_of(check_robust(Rule("redundant"), features, labels), capsys, True,
                        "Without the image your model still reaches",
                        f"what the report alone could give ({ROBUST_MIN_ACCURACY:.4f})")
    assert result.value >= ROBUST_MIN_ACCURACY


def test_robust_fails_a_model_that_needs_its_film(capsys):
    features, labels = records(1200, 4, 0.25, rule="redundant")
    needs_film = Rule("redundant", use=("image", "audio"))  # reads b from the film only
    result = verdict_of(check_robust(needs_film, features, labels), capsys, False,
                        f"asks for {ROBUST_MIN_ACCURACY:.4f}",
                        f"{DOCUMENTED_CEILINGS['text+audio']:.4f}", "modality dropout")
    assert result.value < ROBUST_MIN_ACCURACY


def test_robust_removes_every_feature_built_from_the_film(capsys):
    features, labels = records(1200, 4, 0.25, rule="redundant")
    crossed = dict(features, **{"image*text": features["image"] * features["text"]})

    class ReadsTheCross(Rule):
        def forward(self, features):
            assert "image*text" not in features, "a feature of the film was left in"
            return super().forward(features)

    assert check_robust(ReadsTheCross("redundant"), crossed, labels).passed
    capsys.readouterr()


def test_robust_zero_fills_a_model_that_needs_every_input_and_flags_a_leak(capsys):
    features, labels = records(1200, 4, 0.0, rule="redundant")

    class NeedsAll(Rule):
        requires_all_modalities = True
        input_dims = {"image": 2, "text": 2, "audio": 2}

        def forward(self, features):
            assert set(features) == set(self.input_dims), "not zero-filled"
            assert torch.equal(features["image"], torch.zeros_like(features["image"]))
            return super().forward({m: x for m, x in features.items() if m != "image"})

    verdict_of(check_robust(NeedsAll("redundant"), features, labels), capsys, False,
               "That is a leak")  # 1.0 without the film is above the text+audio ceiling


# ----------------------------------------------------------------------------- comparison
def test_comparison_of_numbers_flags_a_leak_and_a_collapse(capsys):
    verdict_of(check_comparison(0.993, {"late fusion": 0.79}), capsys, False, "That is a leak")
    verdict_of(check_comparison(0.26, {"text alone": 0.66, "late fusion": 0.79}), capsys,
               False, "close to chance", "upstream")
    result = verdict_of(check_comparison(0.5, {"text alone": 0.66, "late fusion": 0.79}),
                        capsys, False, "no better than one record alone")
    assert "fuse at the feature level" not in result.message
    verdict_of(check_comparison(0.75, {"text alone": 0.66, "late fusion": 0.79}), capsys,
               False, "fuse at the feature level")


# ----------------------------------------------------------------------------- honest
CHOOSER = '''
import torch
import torch.nn.functional as F
from course_lib.train import train


def fit(build, features, labels):
    model = build({m: x.shape[1] for m, x in features.items()}, 4)
    names = list(features)
    train(model, lambda batch: F.cross_entropy(model(dict(zip(names, batch[:-1]))), batch[-1]),
          [features[m] for m in names] + [labels], epochs=30, lr=1e-2, progress=False)
    return model.eval()


def accuracy(model, features, labels):
    with torch.no_grad():
        return (model(features).argmax(1) == labels).float().mean().item()


def choose_recipe(recipes, fit_features, fit_labels, validation_features, validation_labels):
    scores = {}
    for name, build in recipes.items():
        model = fit(build, fit_features, fit_labels)
        scores[name] = SCORE
    return CHOICE, scores
'''
HONEST = "accuracy(model, validation_features, validation_labels)"


def chooser(score=HONEST, choice="max(scores, key=scores.get)"):
    """A learner's notebook namespace holding the test split, and its choose_recipe."""
    test_features, test_labels = records(200, 9, 0.1)
    namespace = {"test_features": test_features, "test_labels": test_labels,
                 "latest_run": "kept"}
    exec(compile(CHOOSER.replace("SCORE", score).replace("CHOICE", choice), "<notebook>",
                 "exec"), namespace)
    return namespace


class Concat(nn.Module):
    def __init__(self, input_dims, num_classes, hidden, dropout=0.0):
        super().__init__()
        self.names = list(input_dims)
        self.net = nn.Sequential(nn.Linear(sum(input_dims.values()), hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, features):
        return self.net(torch.cat([features[m] for m in self.names], dim=1))


RECIPES = {"width 2": lambda dims, classes: Concat(dims, classes, 2),
           "width 64": lambda dims, classes: Concat(dims, classes, 64)}


def honest_case():
    fit_features, fit_labels = records(160, 5, 0.1)
    validation_features, validation_labels = records(120, 6, 0.1)
    return fit_features, fit_labels, validation_features, validation_labels


def test_honest_passes_a_choice_made_on_validation_patients(capsys):
    namespace = chooser()
    result = verdict_of(check_honest(namespace["choose_recipe"], RECIPES, *honest_case()),
                        capsys, True, "validation patients", "without touching the test split")
    chosen, scores = result.value
    assert chosen == "width 64" and set(scores) == set(RECIPES)
    assert namespace["test_labels"].shape == (200,)  # the test split is given back


def test_honest_catches_a_selection_that_reads_the_test_labels(capsys):
    namespace = chooser(score="accuracy(model, test_features, test_labels)")
    verdict_of(check_honest(namespace["choose_recipe"], RECIPES, *honest_case()), capsys,
               False, "used `test_features`", "the test split")
    assert isinstance(namespace["test_labels"], torch.Tensor)
    assert namespace["latest_run"] == "kept"


def test_honest_catches_a_peek_even_when_the_choice_would_not_change(capsys):
    peek = "accuracy(model, validation_features, validation_labels) + 0 * len(test_labels)"
    verdict_of(check_honest(chooser(score=peek)["choose_recipe"], RECIPES, *honest_case()),
               capsys, False, "used `test_labels`")


def test_honest_withholds_what_it_is_told_to_withhold_whatever_its_name(capsys):
    namespace = chooser(score="accuracy(model, held, validation_labels)")
    namespace["held"] = namespace["test_features"]
    verdict_of(check_honest(namespace["choose_recipe"], RECIPES, *honest_case(),
                            withheld=(namespace["held"],)), capsys, False, "used `held`")


def test_honest_catches_scores_on_the_training_patients(capsys):
    namespace = chooser(score="accuracy(model, fit_features, fit_labels)")
    fit_features, fit_labels = records(640, 5, 0.0)
    validation_features, validation_labels = records(120, 6, 0.1)
    verdict_of(check_honest(namespace["choose_recipe"], RECIPES, fit_features, fit_labels,
                            validation_features, validation_labels), capsys, False,
               "patients the models learned from")


def test_honest_wrong_choices_and_shapes(capsys):
    case = honest_case()
    verdict_of(check_honest(chooser(choice="min(scores, key=scores.get)")["choose_recipe"],
                            RECIPES, *case), capsys, False, "has the best validation accuracy")
    verdict_of(check_honest(chooser(choice="'width 3'")["choose_recipe"], RECIPES, *case),
               capsys, False, "not one of the recipes")
    verdict_of(check_honest(chooser(score="float('nan')")["choose_recipe"], RECIPES, *case),
               capsys, False, "not a finite number")
    verdict_of(check_honest(chooser(score="100 * " + HONEST)["choose_recipe"], RECIPES, *case),
               capsys, False, "percentage")
    verdict_of(check_honest(lambda *args: "width 64", RECIPES, *case), capsys, False,
               "should return (name, validation_accuracies)")
    verdict_of(check_honest(stub, RECIPES, *case), capsys, False, "Not implemented yet")
    verdict_of(check_honest(chooser()["choose_recipe"], stub, *case), capsys, False,
               "Not implemented yet")
    assert check_honest(chooser()["choose_recipe"], lambda: RECIPES, *case).passed
    verdict_of(check_honest(chooser()["choose_recipe"], {"one": RECIPES["width 2"]}, *case),
               capsys, False, "at least two candidates")
    fit_features, fit_labels, _, _ = case
    verdict_of(check_honest(chooser()["choose_recipe"], RECIPES, fit_features, fit_labels,
                            fit_features, fit_labels), capsys, False, "also fit patients")
