"""Tests for course_lib.evaluation against hand-derived values and printed statistical tables."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib.evaluation import (  # noqa: E402
    Estimate,
    PairedComparison,
    RunSummary,
    comparison_table,
    describe_comparison,
    is_above,
    mcnemar_test,
    mean_interval,
    noise_words,
    paired_bootstrap,
    plot_estimates,
    repeat_runs,
    separated,
    student_t_quantile,
    wilson_estimate,
    wilson_interval,
)


# ---- Student-t quantiles: values from any printed t table (3 decimals) -----------------------
@pytest.mark.parametrize(
    ("probability", "df", "table_value"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 3, 3.182),
        (0.975, 4, 2.776),
        (0.975, 9, 2.262),
        (0.95, 10, 1.812),
        (0.995, 30, 2.750),
        (0.975, 120, 1.980),
    ],
)
def test_student_t_quantile_matches_printed_table(probability, df, table_value):
    assert student_t_quantile(probability, df) == pytest.approx(table_value, abs=6e-4)


def test_student_t_quantile_closed_forms_for_one_and_two_degrees_of_freedom():
    # df = 1 is the Cauchy distribution: F^-1(p) = tan(pi (p - 1/2)).
    assert student_t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2))  =>  t = c sqrt(2 / (1 - c^2)), c = 2p - 1.
    c = 0.9
    assert student_t_quantile(0.95, 2) == pytest.approx(c * math.sqrt(2 / (1 - c * c)), rel=1e-9)
    assert student_t_quantile(0.05, 2) == pytest.approx(-c * math.sqrt(2 / (1 - c * c)), rel=1e-9)


def test_student_t_quantile_tends_to_the_normal_quantile():
    assert student_t_quantile(0.975, 5000) == pytest.approx(1.95996, abs=1e-3)


@pytest.mark.parametrize(("probability", "df", "argument"), [(0.0, 3, "probability"),
                                                              (1.0, 3, "probability"),
                                                              (0.9, 0, "df"), (0.9, 2.5, "df")])
def test_student_t_quantile_rejects_bad_input(probability, df, argument):
    with pytest.raises(ValueError, match=argument):
        student_t_quantile(probability, df)


# ---- mean_interval ---------------------------------------------------------------------------
def test_mean_interval_of_one_to_five_by_hand():
    # mean 3, sample std sqrt(2.5), standard error sqrt(2.5 / 5) = sqrt(0.5), t_{0.975,4} = 2.776
    estimate = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert estimate.mean == pytest.approx(3.0)
    assert estimate.std == pytest.approx(math.sqrt(2.5))
    assert estimate.half_width == pytest.approx(2.776 * math.sqrt(0.5), abs=1e-3)
    assert (estimate.low, estimate.high) == pytest.approx((1.037, 4.963), abs=1e-3)
    assert estimate.values == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert estimate.n == 5 and estimate.method == "t"


def test_mean_interval_of_two_values_uses_t_with_one_degree_of_freedom():
    # values 0.8, 0.9: mean 0.85, std 0.0707107, se 0.05, t_{0.975,1} = 12.706
    estimate = mean_interval([0.8, 0.9])
    assert estimate.half_width == pytest.approx(12.706 * 0.05, abs=1e-4)


def test_mean_interval_at_90_percent_is_narrower():
    values = [0.81, 0.84, 0.86, 0.83, 0.85]
    assert mean_interval(values, 0.90).half_width < mean_interval(values, 0.95).half_width
    # t_{0.95,4} = 2.132 from the table
    std = mean_interval(values).std
    assert mean_interval(values, 0.90).half_width == pytest.approx(2.132 * std / 5**0.5, abs=1e-4)


@pytest.mark.parametrize(
    ("values", "confidence", "argument"),
    [([0.9], 0.95, "values"), ([], 0.95, "values"), ([0.1, float("nan")], 0.95, "values"),
     ([0.1, 0.2], 1.0, "confidence")],
)
def test_mean_interval_rejects_bad_input(values, confidence, argument):
    with pytest.raises(ValueError, match=argument):
        mean_interval(values, confidence)


# ---- Wilson ----------------------------------------------------------------------------------
def test_wilson_interval_eight_of_ten_by_hand():
    # z = 1.959964, n = 10, p = 0.8: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.716740,
    # half z / (1 + z^2/10) * sqrt(0.016 + z^2/400) = 0.226577.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.716740 - 0.226577, abs=2e-6)
    assert high == pytest.approx(0.716740 + 0.226577, abs=2e-6)


def test_wilson_interval_zero_successes_by_hand():
    # p = 0: interval [0, z^2/n / (1 + z^2/n)] = [0, 3.841459 / 13.841459]
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((1 - high, 1.0), abs=1e-9)


@pytest.mark.parametrize(("successes", "trials"), [(382, 450), (3, 7), (115, 115), (1, 2)])
def test_wilson_bounds_solve_the_score_equation(successes, trials):
    # The Wilson bounds are the two roots pi of (p - pi)^2 = z^2 pi (1 - pi) / n.
    z = 1.959963985
    p = successes / trials
    for bound in wilson_interval(successes, trials):
        if 0.0 < bound < 1.0:
            assert (p - bound) ** 2 == pytest.approx(z * z * bound * (1 - bound) / trials,
                                                     rel=1e-6)


def test_wilson_on_450_examples_is_about_three_points_wide():
    # 0.85 on 450 examples: normal standard error sqrt(0.85 * 0.15 / 450) = 0.0168
    low, high = wilson_interval(382, 450)
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(0.85 * 0.15 / 450), abs=2e-3)


@pytest.mark.parametrize(
    ("successes", "trials", "argument"),
    [(0, 0, "trials"), (11, 10, "successes"), (-1, 10, "successes"), (2.5, 10, "successes"),
     (1, 10.0, "trials")],
)
def test_wilson_interval_rejects_bad_input(successes, trials, argument):
    with pytest.raises(ValueError, match=argument):
        wilson_interval(successes, trials)


def test_wilson_estimate_from_counts_and_from_flags_agree():
    flags = torch.tensor([True] * 8 + [False] * 2)
    from_flags = wilson_estimate(flags)
    from_counts = wilson_estimate(8, 10)
    assert from_flags == from_counts
    assert from_flags.mean == pytest.approx(0.8)
    assert from_flags.std == pytest.approx(math.sqrt(0.8 * 0.2 / 10))
    assert from_flags.method == "wilson" and from_flags.n == 10
    assert wilson_estimate([1, 0, 1, 1]).mean == pytest.approx(0.75)


def test_wilson_estimate_rejects_bad_input():
    with pytest.raises(ValueError, match="trials"):
        wilson_estimate(8)
    with pytest.raises(ValueError, match="trials"):
        wilson_estimate(torch.ones(4, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="successes"):
        wilson_estimate(torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="successes"):
        wilson_estimate(torch.ones(2, 2, dtype=torch.bool))


# ---- repeat_runs -----------------------------------------------------------------------------
def test_repeat_runs_summarises_each_metric_over_seeds():
    calls = []

    def run(seed: int) -> dict[str, float]:
        calls.append(seed)
        return {"accuracy": 0.80 + 0.01 * seed, "loss": 1.0 + seed}

    summary = repeat_runs(run, seeds=(0, 1, 2, 3, 4))
    assert calls == [0, 1, 2, 3, 4]
    assert isinstance(summary, RunSummary)
    assert list(summary) == ["accuracy", "loss"]
    accuracy = summary["accuracy"]
    assert accuracy.mean == pytest.approx(0.82)
    assert accuracy.std == pytest.approx(0.01 * math.sqrt(2.5))
    assert accuracy.half_width == pytest.approx(2.776 * 0.01 * math.sqrt(0.5), abs=1e-5)
    assert summary.raw("loss") == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert summary.mean("loss") == pytest.approx(3.0)
    assert summary.interval("loss") == pytest.approx((1.037, 4.963), abs=1e-3)
    assert summary.std("loss") == pytest.approx(math.sqrt(2.5))


def test_repeat_runs_with_a_float_run_stores_value():
    summary = repeat_runs(lambda seed: float(seed), seeds=(1, 3))
    assert summary["value"].mean == pytest.approx(2.0)
    assert summary.seeds == (1, 3)
    with pytest.raises(KeyError, match="value"):
        summary["accuracy"]


@pytest.mark.parametrize(("seeds", "message"), [((0,), "seeds"), ((), "seeds"),
                                                ((1, 1, 2), "seeds")])
def test_repeat_runs_rejects_bad_seeds(seeds, message):
    with pytest.raises(ValueError, match=message):
        repeat_runs(lambda seed: 0.5, seeds=seeds)


def test_repeat_runs_rejects_inconsistent_or_non_finite_results():
    with pytest.raises(ValueError, match="same metrics"):
        repeat_runs(lambda seed: {"a": 1.0} if seed == 0 else {"b": 1.0}, seeds=(0, 1))
    with pytest.raises(ValueError, match="non-finite"):
        repeat_runs(lambda seed: float("inf"), seeds=(0, 1))
    with pytest.raises(ValueError, match="empty"):
        repeat_runs(lambda seed: {}, seeds=(0, 1))


# ---- paired comparisons ----------------------------------------------------------------------
def test_paired_bootstrap_of_identical_models_is_exactly_zero():
    flags = torch.tensor([True, False, True, True, False] * 20)
    result = paired_bootstrap(flags, flags, resamples=500)
    assert isinstance(result, PairedComparison)
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0 and not result.separated
    assert noise_words(result) == "within noise"


def test_paired_bootstrap_of_a_model_right_wherever_the_other_is_wrong():
    a = torch.ones(50, dtype=torch.bool)
    result = paired_bootstrap(a, ~a, resamples=500)
    assert (result.difference, result.low, result.high) == (1.0, 1.0, 1.0)
    assert result.p_value == 0.0 and result.separated
    assert noise_words(result) == "beyond noise"


def test_paired_bootstrap_interval_matches_the_normal_approximation():
    # 400 examples: A alone right on 60, B alone right on 20. Per-example differences d have
    # mean 0.1 and variance E[d^2] - 0.1^2 = 0.2 - 0.01 = 0.19, so the bootstrap distribution of
    # the mean is close to normal with sd sqrt(0.19 / 400) = 0.02179: interval 0.1 +- 0.0427.
    a = torch.zeros(400, dtype=torch.bool)
    b = torch.zeros(400, dtype=torch.bool)
    a[:60] = True
    b[60:80] = True
    a[80:300] = b[80:300] = True  # both right: do not change the difference
    result = paired_bootstrap(a, b, resamples=20_000, seed=1)
    assert result.difference == pytest.approx(0.1)
    assert result.low == pytest.approx(0.1 - 1.96 * math.sqrt(0.19 / 400), abs=5e-3)
    assert result.high == pytest.approx(0.1 + 1.96 * math.sqrt(0.19 / 400), abs=5e-3)
    assert result.p_value < 0.001
    assert paired_bootstrap(a, b, resamples=2_000, seed=3) == paired_bootstrap(
        a, b, resamples=2_000, seed=3
    )


def test_paired_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="correct_a and correct_b"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="correct_a"):
        paired_bootstrap([], [])
    with pytest.raises(ValueError, match="correct_b"):
        paired_bootstrap([1, 0], [2, 0])
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([1, 0], [0, 1], resamples=10)


@pytest.mark.parametrize(
    ("only_a", "only_b", "p_value"),
    [
        (1, 5, 2 * (1 + 6) / 64),  # n = 6 discordant: 2 P(X <= 1) = 14 / 64
        (0, 6, 2 / 64),
        (5, 1, 14 / 64),
        (2, 2, 1.0),  # 2 P(X <= 2) = 22 / 16, capped at 1
        (3, 10, 2 * (1 + 13 + 78 + 286) / 8192),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_exact_p_value_by_hand(only_a, only_b, p_value):
    both = 7
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * 3
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * 3
    assert mcnemar_test(a, b) == pytest.approx(p_value, rel=1e-12)


def test_mcnemar_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="correct_a and correct_b"):
        mcnemar_test([1, 0], [1])


# ---- words and orderings ---------------------------------------------------------------------
def _estimate(mean: float, half: float) -> Estimate:
    return Estimate(mean, mean - half, mean + half, half, (), 5)


def test_is_above_needs_disjoint_intervals():
    assert is_above(_estimate(0.90, 0.01), _estimate(0.85, 0.01))
    assert not is_above(_estimate(0.90, 0.03), _estimate(0.85, 0.03))
    assert not is_above(_estimate(0.85, 0.01), _estimate(0.90, 0.01))
    with pytest.raises(ValueError, match="b must be an Estimate"):
        is_above(_estimate(0.9, 0.1), 0.8)


def test_noise_words_and_separated():
    high, low = _estimate(0.90, 0.01), _estimate(0.85, 0.01)
    assert separated(high, low) and separated(low, high)
    assert noise_words(high, low) == "beyond noise"
    assert noise_words(_estimate(0.904, 0.012), _estimate(0.900, 0.012)) == "within noise"
    with pytest.raises(ValueError, match="b must be None"):
        separated(paired_bootstrap([1, 0], [0, 1], resamples=100), high)


def test_describe_comparison_claims_only_what_intervals_allow():
    early, hybrid = _estimate(0.904, 0.012), _estimate(0.900, 0.012)
    sentence = describe_comparison("early", early, "hybrid", hybrid)
    assert sentence.endswith("within noise.") and "differ by 0.004" in sentence
    sentence = describe_comparison("late", _estimate(0.80, 0.01), "hybrid", _estimate(0.9, 0.01))
    assert sentence.startswith("hybrid 0.900 [0.890, 0.910] is above late")
    assert sentence.endswith("beyond noise.")


# ---- tables and charts -----------------------------------------------------------------------
def test_comparison_table_prints_every_interval():
    rows = {
        "early": repeat_runs(lambda s: {"accuracy": 0.9 + 0.01 * s, "drop": 0.1}, seeds=(0, 1)),
        "late": {"accuracy": _estimate(0.85, 0.02), "drop": _estimate(0.05, 0.01)},
    }
    rows["early"] = {"accuracy": rows["early"]["accuracy"], "drop": _estimate(0.1, 0.01)}
    text = comparison_table(rows, title="Fusion on digits", references={"oracle": 0.98})
    lines = text.splitlines()
    assert lines[0] == "Fusion on digits"
    assert "t interval" in lines[1] and "95 %" in lines[1]
    assert "0.850 [0.830, 0.870]" in text and "0.050 [0.040, 0.060]" in text
    early = mean_interval([0.90, 0.91])
    assert early.format() in text
    assert lines[-1] == "oracle: 0.980"
    # every number in a model row is followed by its interval
    for line in lines[4:-1]:
        assert line.count("[") == 2 and line.count("]") == 2


def test_comparison_table_mentions_wilson_and_selects_columns():
    text = comparison_table(
        {"model": {"acc": wilson_estimate(8, 10), "f1": wilson_estimate(7, 10)}}, columns=["acc"]
    )
    assert "Wilson" in text and "0.800 [0.490, 0.943]" in text and "0.700" not in text


def test_comparison_table_fills_missing_cells_when_asked():
    rows = {"image only": {"accuracy": _estimate(0.75, 0.02)},
            "early": {"accuracy": _estimate(0.9, 0.01), "no image": _estimate(0.68, 0.03)}}
    text = comparison_table(rows, fill="-")
    image_row = next(line for line in text.splitlines() if line.startswith("image only"))
    assert image_row.split()[-1] == "-" and "0.750 [0.730, 0.770]" in image_row
    assert "0.680 [0.650, 0.710]" in text
    with pytest.raises(ValueError, match="no image"):
        comparison_table(rows)


def test_comparison_table_row_header_names_the_first_column():
    text = comparison_table({"clear film (562)": {"late": _estimate(0.9, 0.02)}},
                            row_header="group")
    assert text.splitlines()[1].split()[:2] == ["group", "late"]


def test_comparison_table_rejects_bad_rows():
    with pytest.raises(ValueError, match="rows"):
        comparison_table({})
    with pytest.raises(ValueError, match=r"rows\['a'\]"):
        comparison_table({"a": 0.9})
    with pytest.raises(ValueError, match="columns"):
        comparison_table({"a": _estimate(0.9, 0.1)}, columns=["accuracy"])


def test_plot_estimates_draws_means_and_asymmetric_error_bars():
    figure, ax = plt.subplots()
    estimates = {"a": wilson_estimate(8, 10), "b": mean_interval([0.5, 0.6, 0.7])}
    plot_estimates(ax, estimates, references={"ceiling": 0.95}, title="t")
    bars = [patch.get_height() for patch in ax.patches]
    assert bars == pytest.approx([0.8, 0.6])
    # the error bar of "a" spans its Wilson interval
    segments = [c for c in ax.collections if hasattr(c, "get_segments")][0].get_segments()
    assert segments[0][:, 1] == pytest.approx(wilson_interval(8, 10))
    assert any(line.get_ydata()[0] == pytest.approx(0.95) for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plt.close(figure)
    with pytest.raises(ValueError, match="estimates"):
        plot_estimates(ax, {})


def test_tables_are_importable_from_course_lib_evaluation():
    import course_lib.evaluation as evaluation
    import course_lib.evaluation_tables as tables

    assert evaluation.comparison_table is tables.comparison_table
    assert evaluation.plot_estimates is tables.plot_estimates
    assert "comparison_table" in dir(evaluation)
    with pytest.raises(AttributeError, match="no_such_helper"):
        evaluation.no_such_helper  # noqa: B018
