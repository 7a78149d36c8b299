"""Robustness of course_lib.evaluation: None, NaN, tensors, huge counts and wrong kinds are
refused by name and at once; numpy scalars and one-element tensors are numbers; any df is fast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from test_robustness_support import (
    assert_rejects,
    bad_int,
    covers,
    not_a_number,
    not_a_tensor,
    not_an_int,
    numpy_scalars,
)

from course_lib.evaluation import (
    Estimate,
    PairedComparison,
    RunSummary,
    describe_comparison,
    is_above,
    mcnemar_test,
    mean_interval,
    noise_words,
    paired_bootstrap,
    repeat_runs,
    separated,
    student_t_quantile,
    wilson_estimate,
    wilson_interval,
)
from course_lib.evaluation_tables import comparison_table, plot_estimates

scipy_stats = pytest.importorskip("scipy.stats")

ESTIMATE = Estimate(0.6, 0.5, 0.7, 0.05, (0.55, 0.6, 0.65), 3)
BAD_PROBABILITY = st.one_of(not_a_number(), st.floats(-9, 0), st.floats(1, 9),
                            st.just(torch.tensor(0.5)), st.just(np.array([0.5])))
BAD_CONFIDENCE = BAD_PROBABILITY
BAD_FLAGS = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.just([None, 1]),
                      st.just(["a", "b"]), st.just(torch.tensor([1.0, float("nan")])),
                      st.just(torch.tensor([0.0, 2.0])), st.just(torch.ones(2, 2)),
                      st.just(torch.zeros(0)), st.just([1j, 0]), st.just({"a": 1}))


# ----------------------------------------------------------------------------- the issue's examples
@covers(student_t_quantile)
@given(BAD_PROBABILITY)
def test_student_t_quantile_refuses_none_nan_and_tensors_by_name(probability):
    # Before: None raised "'<' not supported between float and NoneType"; a tensor was used.
    assert_rejects(student_t_quantile, "probability", probability, 4)


@covers(student_t_quantile)
@given(bad_int(1, 10**15))
def test_student_t_quantile_refuses_a_bad_df_by_name(df):
    assert_rejects(student_t_quantile, "df", 0.975, df)


@covers(student_t_quantile)
@settings(max_examples=30)
@given(st.one_of(st.integers(1, 40), st.integers(900, 1100), st.integers(10**4, 10**15)),
       st.floats(1e-6, 1 - 1e-6))
def test_student_t_quantile_is_scipy_s_for_any_df_and_fast(df, probability):
    # Before: df = 10**9 looped for ever (its series has df / 2 terms).
    start = _clock()
    got = student_t_quantile(probability, df)
    assert _clock() - start < 1.0
    assert got == pytest.approx(scipy_stats.t.ppf(probability, df), rel=1e-8, abs=1e-8)
    assert student_t_quantile(probability, np.int64(df)) == got  # numpy integers are integers


@covers(wilson_interval)
@given(st.sampled_from(["successes", "trials", "confidence"]), st.data())
def test_wilson_interval_refuses_none_nan_tensors_and_huge_counts_by_name(argument, data):
    arguments = {"successes": 3, "trials": 10, "confidence": 0.95}
    arguments[argument] = data.draw({
        "successes": st.one_of(not_an_int(), st.integers(11, 10**20), st.integers(-9, -1)),
        "trials": st.one_of(not_an_int(), st.integers(-9, 2), st.just(10**400)),
        "confidence": BAD_CONFIDENCE}[argument])
    if argument == "trials" and isinstance(arguments["trials"], int) and \
            not isinstance(arguments["trials"], bool) and arguments["trials"] >= 3:
        return  # 10**400 trials with 3 successes: checked below as a huge count
    # Before: 10**400 trials raised OverflowError, None confidence a bare TypeError.
    assert_rejects(wilson_interval, argument, **arguments)


def test_wilson_interval_refuses_a_count_past_what_a_float_holds():
    assert_rejects(wilson_interval, "trials", 3, 10**400)
    assert_rejects(wilson_interval, "trials", 10**400, 10**400)


@covers(wilson_interval, wilson_estimate, Estimate)
@given(st.integers(1, 2000), st.data(), st.sampled_from([int, np.int64, np.int32]))
def test_wilson_interval_is_the_hand_formula_for_any_integer_kind(trials, data, kind):
    successes = data.draw(st.integers(0, trials))
    low, high = wilson_interval(kind(successes), kind(trials))
    z, p = 1.959963984540054, successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials**2))
    assert (low, high) == pytest.approx((max(0, centre - half), min(1, centre + half)), abs=1e-12)
    estimate = wilson_estimate(kind(successes), kind(trials))
    assert (estimate.low, estimate.high, estimate.n) == (low, high, trials)


@covers(wilson_estimate)
@given(BAD_FLAGS)
def test_wilson_estimate_refuses_what_are_not_right_wrong_flags(flags):
    # Before: None raised RuntimeError "Could not infer dtype of NoneType".
    assert_rejects(wilson_estimate, "successes", flags)


@covers(wilson_estimate)
@given(st.lists(st.booleans(), min_size=1, max_size=30), st.sampled_from(
    ["list", "bool", "int", "float64", "numpy", "strided"]))
def test_wilson_estimate_reads_flags_in_any_form(flags, form):
    tensor = torch.tensor(flags)
    given_flags = {"list": flags, "bool": tensor, "int": tensor.long(), "float64": tensor.double(),
                   "numpy": tensor.numpy(), "strided": tensor.repeat_interleave(2)[::2]}[form]
    estimate = wilson_estimate(given_flags)
    assert estimate.n == len(flags) and estimate.mean == pytest.approx(sum(flags) / len(flags))
    assert_rejects(wilson_estimate, "trials", flags, 5)


@covers(paired_bootstrap, PairedComparison, mcnemar_test)
@given(st.sampled_from(["correct_a", "correct_b"]), BAD_FLAGS)
def test_paired_tests_refuse_bad_flags_by_name(argument, flags):
    arguments = {"correct_a": [1, 0, 1], "correct_b": [0, 0, 1]}
    arguments[argument] = flags
    assert_rejects(paired_bootstrap, argument, **arguments, resamples=100)
    assert_rejects(mcnemar_test, argument, **arguments)


@covers(paired_bootstrap)
@given(st.sampled_from(["resamples", "confidence", "seed"]), st.data())
def test_paired_bootstrap_refuses_bad_settings_and_huge_work(argument, data):
    bad = {"resamples": st.one_of(not_an_int(), st.integers(-9, 99), st.just(10**9),
                                  st.just(10**12)),
           "confidence": BAD_CONFIDENCE,
           "seed": st.one_of(bad_int(0), st.just(2**64))}[argument]
    # Before: 10**12 resamples raised the allocator's RuntimeError, a None seed RuntimeError.
    assert_rejects(paired_bootstrap, argument, [1, 0] * 5, [0, 1] * 5,
                   **{argument: data.draw(bad)})


def test_paired_bootstrap_refuses_resamples_times_examples_past_the_limit():
    many = torch.ones(10**7, dtype=torch.bool)  # before: ten seconds of resampling
    assert_rejects(paired_bootstrap, "resamples", many, many, resamples=100)


@covers(paired_bootstrap, mcnemar_test, PairedComparison, PairedComparison.format)
@given(st.integers(1, 40), st.data())
def test_paired_tests_agree_with_the_hand_formulas(n, data):
    a = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    b = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    comparison = paired_bootstrap(np.array(a), torch.tensor(b).long(), resamples=200, seed=1)
    assert comparison.difference == pytest.approx((sum(a) - sum(b)) / n)
    assert comparison.low <= comparison.difference + 1e-12 or comparison.low <= comparison.high
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    expected = 1.0 if only_a + only_b == 0 else min(1.0, scipy_stats.binomtest(
        only_a, only_a + only_b).pvalue)
    assert mcnemar_test(a, b) == pytest.approx(expected, rel=1e-9)
    assert comparison.format(2).startswith(("+", "-"))


@covers(mean_interval, Estimate)
@given(st.one_of(st.none(), st.text(max_size=3), st.just([0.5]), st.just([]),
                 st.just([0.5, None]), st.just([0.5, "0.6"]), st.just([0.5, float("nan")]),
                 st.just([0.5, float("inf")]), st.just(torch.ones(2, 2)), st.just({"a": 1}),
                 st.just([0.5, torch.ones(2)]), st.just([True, False])))
def test_mean_interval_refuses_what_are_not_two_finite_numbers(values):
    # Before: "12" (a string) gave the mean of 1 and 2; None raised "not iterable".
    assert_rejects(mean_interval, "values", values)


@covers(mean_interval)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=8), numpy_scalars())
def test_mean_interval_takes_numbers_in_any_scalar_form(values, kind):
    estimate = mean_interval([kind(v) for v in values])
    assert estimate.mean == pytest.approx(sum(values) / len(values), rel=1e-6, abs=1e-6)
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / len(values)**.5
    assert estimate.half_width == pytest.approx(half, rel=1e-5, abs=1e-3)
    assert mean_interval(torch.tensor(values, dtype=torch.float64)).mean == \
        pytest.approx(estimate.mean, rel=1e-6, abs=1e-6)


@covers(mean_interval, repeat_runs, wilson_interval)
@given(BAD_CONFIDENCE)
def test_every_interval_refuses_a_bad_confidence_by_name(confidence):
    assert_rejects(mean_interval, "confidence", [0.1, 0.2], confidence)
    assert_rejects(repeat_runs, "confidence", lambda seed: 0.5, (0, 1), confidence)


# ----------------------------------------------------------------------------- seeds
def _returns(value):
    return lambda seed: value


@covers(repeat_runs, RunSummary)
@given(st.sampled_from(["run", "seeds", "result"]), st.data())
def test_repeat_runs_refuses_bad_runs_seeds_and_results_by_name(argument, data):
    if argument == "run":
        assert_rejects(repeat_runs, "run", data.draw(st.one_of(not_a_tensor(), st.just(0.5))))
    elif argument == "seeds":
        seeds = data.draw(st.one_of(st.none(), st.text(min_size=2, max_size=3), st.just([0]),
                                    st.just([0, 0]), st.just([0, -1]), st.just([0, 1.5]),
                                    st.just([0, None]), st.just(torch.tensor([0.0, 1.0])),
                                    st.integers()))
        assert_rejects(repeat_runs, "seeds", _returns(0.5), seeds)
    else:
        result = data.draw(st.one_of(st.none(), st.text(max_size=3), st.just([0.5]),
                                     st.just(torch.ones(2)), st.just({1: 0.5}),
                                     st.just({"a": None}), st.just({"a": float("nan")}),
                                     st.just(True), st.just(1j), st.just({})))
        # Before: None raised "not iterable", a numpy float32 "not iterable".
        assert_rejects(repeat_runs, "run", _returns(result), (0, 1))


@covers(repeat_runs, RunSummary, RunSummary.mean, RunSummary.std, RunSummary.interval,
        RunSummary.raw)
@given(numpy_scalars(), st.sampled_from(["list", "range", "numpy", "tensor"]))
def test_repeat_runs_takes_numbers_of_any_scalar_kind_and_seeds_of_any_sequence(kind, form):
    seeds = {"list": [0, 1, 2], "range": range(3), "numpy": np.arange(3),
             "tensor": torch.arange(3)}[form]
    summary = repeat_runs(lambda seed: kind(0.5 + seed / 10), seeds)
    assert summary.seeds == (0, 1, 2)
    assert summary.mean() == pytest.approx(0.6) and summary.raw() == pytest.approx((.5, .6, .7))
    assert summary.std() == pytest.approx(0.1) and summary.interval()[0] < 0.6
    for method in (summary.mean, summary.std, summary.interval, summary.raw):
        assert_rejects(method, "key", "accuracy")
        assert_rejects(method, "key", None)
    assert_rejects(RunSummary, "seeds", [0, 1], {})
    assert_rejects(RunSummary, "estimates", (0, 1), {"value": 0.5})


# ----------------------------------------------------------------------------- estimates, words
@covers(Estimate, Estimate.format)
@given(st.sampled_from(["mean", "low", "high", "std", "n", "confidence", "method", "values",
                        "digits"]), st.data())
def test_estimates_refuse_nan_and_wrong_kinds_by_name(argument, data):
    fields = {"mean": 0.6, "low": 0.5, "high": 0.7, "std": 0.1, "values": (), "n": 3,
              "confidence": 0.95, "method": "t"}
    if argument == "digits":
        assert_rejects(ESTIMATE.format, "digits", data.draw(bad_int(0, 12)))
        return
    fields[argument] = data.draw({
        "n": bad_int(1, 10**15), "confidence": BAD_CONFIDENCE,
        "method": st.sampled_from(["T", "bootstrap", None, 1]),
        "values": st.sampled_from([None, "0.5", (float("nan"),), (None,)]),
    }.get(argument, not_a_number()))
    assert_rejects(Estimate, argument, **fields)


def test_an_estimate_whose_low_end_is_above_its_high_end_is_refused():
    assert_rejects(Estimate, "low", 0.6, 0.7, 0.5, 0.1, (), 3)


@covers(is_above, separated, noise_words, describe_comparison)
@given(st.one_of(not_a_tensor(), st.just(torch.tensor(0.5)), st.just((0.5, 0.6))),
       st.sampled_from(["a", "b"]))
def test_orderings_refuse_what_is_not_an_estimate(value, argument):
    arguments = {"a": ESTIMATE, "b": ESTIMATE}
    arguments[argument] = value
    if not (argument == "b" and value is None):  # separated(a) alone is for a comparison
        assert_rejects(is_above, argument, **arguments)
        assert_rejects(separated, argument, **arguments)
        assert_rejects(noise_words, argument, **arguments)
    assert_rejects(describe_comparison, argument, "x", arguments["a"], "y", arguments["b"])
    comparison = paired_bootstrap([1, 0], [1, 0], resamples=100)
    assert_rejects(separated, "b", comparison, ESTIMATE)


@covers(describe_comparison)
@given(st.sampled_from(["name_a", "name_b", "digits"]), st.data())
def test_describe_comparison_checks_names_and_digits(argument, data):
    arguments = {"name_a": "early", "name_b": "late", "digits": 3}
    arguments[argument] = data.draw(bad_int(0, 12) if argument == "digits" else
                                    st.one_of(st.none(), st.integers(), st.just(["x"])))
    assert_rejects(describe_comparison, argument, arguments["name_a"], ESTIMATE,
                   arguments["name_b"], ESTIMATE, digits=arguments["digits"])
    higher = Estimate(0.9, 0.85, 0.95, 0.02, (), 5)
    assert describe_comparison("a", higher, "b", ESTIMATE).endswith("beyond noise.")
    assert describe_comparison("a", ESTIMATE, "b", ESTIMATE).endswith("within noise.")


# ----------------------------------------------------------------------------- tables and charts
@covers(comparison_table)
@given(st.one_of(st.none(), st.just([ESTIMATE]), st.just({}), st.just({"a": float("nan")}),
                 st.just({"a": torch.tensor(0.5)}), st.just({"a": None}), st.just({"a": {}}),
                 st.just({"a": {1: ESTIMATE}}), st.just({"a": {"x": 0.5}}),
                 st.just(torch.ones(3)), st.text(max_size=3)))
def test_comparison_table_refuses_rows_that_are_not_estimates(rows):
    # Before: a list raised AttributeError ("'list' object has no attribute 'items'").
    assert_rejects(comparison_table, "rows", rows)


@covers(comparison_table)
@given(st.sampled_from(["references", "digits", "columns", "title", "fill", "row_header"]),
       st.data())
def test_comparison_table_checks_every_setting_by_name(argument, data):
    bad = {"references": st.sampled_from([{"ceiling": float("nan")}, {"ceiling": None},
                                          {"ceiling": torch.ones(2)}, {3: 0.5}, [0.5], "0.9"]),
           "digits": bad_int(0, 12).filter(lambda v: v is not None),
           "columns": st.sampled_from(["value", [None], [3], torch.ones(2)]),
           "title": st.sampled_from([3, ["t"], b"t"]), "fill": st.sampled_from([0, ["-"]]),
           "row_header": st.sampled_from([None, 3, ["model"]])}[argument]
    value = data.draw(bad)
    # Before: digits=10**9 took for ever formatting, a None reference raised a bare TypeError.
    assert_rejects(comparison_table, argument if argument != "references" else "references",
                   {"a": ESTIMATE}, **{argument: value})


@covers(comparison_table, plot_estimates)
@given(st.integers(1, 4), st.integers(0, 6))
def test_tables_and_charts_show_every_estimate(models, digits):
    rows = {f"model {k}": {"clean": ESTIMATE, "noisy": wilson_estimate(k, 5)}
            for k in range(models)}
    table = comparison_table(rows, digits=digits, references={"ceiling": 0.93},
                             title="t", fill="-")
    assert len(table.splitlines()) == models + 5 and f"ceiling: {0.93:.{digits}f}" in table
    ax = plot_estimates(Figure().add_subplot(), {n: r["clean"] for n, r in rows.items()},
                        references={"ceiling": 0.93})
    assert len(ax.patches) == models


@covers(plot_estimates)
@given(st.sampled_from(["ax", "estimates", "references", "ylabel", "title", "show_values"]),
       st.data())
def test_plot_estimates_checks_its_arguments_by_name(argument, data):
    arguments = {"ax": Figure().add_subplot(), "estimates": {"a": ESTIMATE}}
    arguments[argument] = data.draw({
        "ax": st.sampled_from([None, "ax", 3, Figure()]),
        "estimates": st.sampled_from([None, {}, [ESTIMATE], {"a": 0.5}, {"a": None}]),
        "references": st.sampled_from([{"x": float("nan")}, {"x": None}, [0.5]]),
        "ylabel": st.sampled_from([None, 3]), "title": st.sampled_from([3, ["t"]]),
        "show_values": st.sampled_from([None, "yes", 1])}[argument])
    assert_rejects(plot_estimates, argument, **arguments)


def _clock() -> float:
    import time

    return time.perf_counter()
