"""The statistics behind comparisons, on plain numbers (no database): Wilson intervals for pass rates,
exact McNemar and a paired bootstrap for A against B, Holm's correction across criteria, Cohen's kappa.

Each wraps scipy or statsmodels rather than re-deriving a formula, and none returns NaN: a statistic that
is undefined for the data (no verdicts, no discordant case) is None, so the wire shapes stay plain JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as _mcnemar
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240917  # fixed: the same data always gives the same interval and p-value
Verdict = Literal["B better", "A better", "no detectable difference"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Proportion:
    """A pass rate with its Wilson score interval."""

    successes: int
    n: int
    rate: float | None
    interval: Interval | None


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Proportion:
    """`successes` of `n` with the Wilson score interval: unlike the normal approximation it stays inside
    [0, 1] and is honest at 0% and 100% (0 of 20 is 0%-16%, not 0%-0%)."""
    if n == 0:
        return Proportion(successes, 0, None, None)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return Proportion(successes, n, successes / n, Interval(float(low), float(high)))


def mcnemar_exact(b_only: int, a_only: int) -> float | None:
    """The exact (binomial) McNemar p-value from the discordant cases: passing in B only, in A only.
    Concordant cases carry no information about the difference. None when no case is discordant."""
    if b_only + a_only == 0:
        return None
    return float(_mcnemar([[0, a_only], [b_only, 0]], exact=True).pvalue)


@dataclass(frozen=True)
class PairedResult:
    """B minus A on matched cases: the effect, its bootstrap interval, a two-sided p-value."""

    n: int
    effect: float
    interval: Interval | None
    p_value: float | None


def _bootstrap_distribution(diffs: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    result = stats.bootstrap(
        (diffs,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", rng=rng, vectorized=True
    )
    return np.asarray(result.bootstrap_distribution)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> PairedResult:
    """The mean of B minus A over cases matched by position, with a seeded percentile bootstrap interval
    and a p-value from the bootstrap distribution shifted to the null (no difference)."""
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diffs.size == 0:
        return PairedResult(0, 0.0, None, None)
    effect = float(diffs.mean())
    if np.all(diffs == diffs[0]):  # nothing to resample: every case moved by the same amount
        p_value = 1.0 if effect == 0 else 1 / (BOOTSTRAP_RESAMPLES + 1)
        return PairedResult(int(diffs.size), effect, Interval(effect, effect), p_value)
    boot = _bootstrap_distribution(diffs)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    extreme = np.count_nonzero(np.abs(boot - effect) >= abs(effect))
    p_value = (extreme + 1) / (boot.size + 1)
    return PairedResult(int(diffs.size), effect, Interval(float(low), float(high)), float(p_value))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment across a family of tests (the criteria of one comparison); a missing
    p-value stays missing and is not counted in the family."""
    present = [p for p in p_values if p is not None]
    if not present:
        return [None] * len(p_values)
    adjusted = iter(multipletests(present, alpha=ALPHA, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def verdict(effect: float, p_value: float | None, alpha: float = ALPHA) -> Verdict:
    """What a reader should conclude: a side only when the (adjusted) p-value is below alpha."""
    if p_value is None or p_value >= alpha or effect == 0:
        return "no detectable difference"
    return "B better" if effect > 0 else "A better"


def verdict_text(result: Verdict, n: int) -> str:
    """The verdict as the Studio and the CLI print it: a null result says how many cases it rests on."""
    return f"no detectable difference at n={n}" if result == "no detectable difference" else result


@dataclass(frozen=True)
class Agreement:
    """Two raters (judge and human) on the same items: counts, raw agreement, Cohen's kappa."""

    n: int
    agreed: int
    both_yes: int
    both_no: int
    judge_yes_human_no: int
    judge_no_human_yes: int
    kappa: float | None

    @property
    def rate(self) -> float | None:
        return self.agreed / self.n if self.n else None


def agreement(pairs: Sequence[tuple[bool, bool]]) -> Agreement:
    """Cohen's kappa of (judge, human) verdicts: agreement beyond what their base rates give by chance.
    Undefined (None) when there are no pairs or both raters always gave the same single answer."""
    table = np.zeros((2, 2), dtype=int)
    for judge, human in pairs:
        table[int(not judge), int(not human)] += 1
    n = int(table.sum())
    chance = (table.sum(axis=1) @ table.sum(axis=0)) / n**2 if n else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):  # its z statistic's variance can be 0; kappa is fine
        kappa = float(cohens_kappa(table).kappa) if n and chance < 1 else None
    yy, yn, ny, nn = (int(v) for v in table.ravel())
    return Agreement(n, yy + nn, yy, nn, yn, ny, kappa)
