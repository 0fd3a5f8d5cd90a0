"""The comparison statistics against textbook values (Newcombe 1998 for Wilson, the binomial for exact
McNemar, Holm 1979's procedure, the standard Cohen's kappa example) and their guarantees."""

from __future__ import annotations

import pytest

from services import statistics as st


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(successes: int, n: int, low: float, high: float) -> None:
    result = st.wilson(successes, n)
    assert result.rate == pytest.approx(successes / n)
    assert result.interval is not None
    assert (result.interval.low, result.interval.high) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_of_a_perfect_score_is_not_a_point() -> None:
    interval = st.wilson(44, 44).interval
    assert interval is not None and interval.high == pytest.approx(1.0) and interval.low < 0.93


def test_no_verdicts_have_no_rate_and_no_interval() -> None:
    assert st.wilson(0, 0) == st.Proportion(0, 0, None, None)


@pytest.mark.parametrize(
    ("b_only", "a_only", "p"),
    # Two-sided exact binomial on the discordant pairs: 2 * P(X <= min) with X ~ Bin(b + c, 1/2).
    [(1, 6, 0.125), (6, 1, 0.125), (2, 10, 158 / 4096), (5, 5, 1.0), (0, 7, 2 / 128)],
)
def test_exact_mcnemar_matches_the_binomial(b_only: int, a_only: int, p: float) -> None:
    assert st.mcnemar_exact(b_only, a_only) == pytest.approx(p)


def test_mcnemar_without_discordant_cases_is_undefined() -> None:
    assert st.mcnemar_exact(0, 0) is None


def test_holm_adjustment_is_the_step_down_maximum() -> None:
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx([0.03, 0.06, 0.06, 0.02, None])
    assert st.holm([None]) == [None]


def test_cohens_kappa_textbook_example() -> None:
    # 50 items: both yes 20, both no 15, judge yes/human no 5, judge no/human yes 10: po=0.7, pe=0.5
    pairs = [(True, True)] * 20 + [(False, False)] * 15 + [(True, False)] * 5 + [(False, True)] * 10
    result = st.agreement(pairs)
    assert result.kappa == pytest.approx(0.4)
    assert (result.n, result.agreed, result.judge_yes_human_no, result.judge_no_human_yes) == (50, 35, 5, 10)
    assert result.rate == pytest.approx(0.7)


def test_kappa_is_undefined_when_both_raters_only_ever_say_yes() -> None:
    result = st.agreement([(True, True)] * 5)
    assert result.kappa is None and result.rate == 1.0
    assert st.agreement([]).kappa is None


def test_paired_bootstrap_is_deterministic_and_finds_a_large_paired_gain() -> None:
    a = [0.0] * 30 + [1.0] * 14
    b = [1.0] * 20 + [0.0] * 10 + [1.0] * 14  # 20 cases fixed, none broken
    first, second = st.paired_bootstrap(a, b), st.paired_bootstrap(a, b)
    assert first == second
    assert first.effect == pytest.approx(20 / 44)
    assert first.interval is not None and 0 < first.interval.low < first.effect < first.interval.high
    assert first.p_value is not None and first.p_value < 0.01


def test_paired_bootstrap_sees_no_difference_when_changes_cancel() -> None:
    a = [1.0, 0.0] * 22
    b = [0.0, 1.0] * 22
    result = st.paired_bootstrap(a, b)
    assert result.effect == 0
    assert result.interval is not None and result.interval.low < 0 < result.interval.high
    assert result.p_value is not None and result.p_value > 0.5


def test_paired_bootstrap_of_identical_runs() -> None:
    result = st.paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert (result.effect, result.p_value) == (0.0, 1.0)
    assert st.paired_bootstrap([], []).interval is None


def test_verdicts_name_the_winner_only_when_significant() -> None:
    assert st.verdict(0.04, 0.6) == "no detectable difference"
    assert st.verdict_text("no detectable difference", 44) == "no detectable difference at n=44"
    assert st.verdict(0.2, 0.001) == "B better"
    assert st.verdict(-0.2, 0.001) == "A better"
    assert st.verdict(0.2, None) == "no detectable difference"
