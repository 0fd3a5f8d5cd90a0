"""Comparing up to 8 experiments matched by test case: pass rates with Wilson intervals, and each
experiment against the first (the baseline) with exact McNemar per criterion, a paired bootstrap of the
mean score, Holm's correction across criteria and a plain verdict. The REST API, the Studio and
`assay experiments compare` all read this one computation.

The unit is the test case (a collection entry). For one criterion a case's score is its share of YES
verdicts over its epochs; a response whose generation failed, or that has no verdict, passed nothing
(score 0), as in the Studio's A/B page. A case passes a criterion when its score is above one half."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import Experiment, PromptResponse, Rating
from services import results
from services import statistics as st
from services.errors import Invalid, owned

MAX_EXPERIMENTS = 8


@dataclass
class Outcomes:
    """One experiment's verdicts folded per test case."""

    experiment: Experiment
    criteria: list[str] = field(default_factory=list)  # texts, in the set's order
    yes: dict[str, dict[int, int]] = field(default_factory=dict)  # criterion -> entry -> YES verdicts
    responses: dict[int, int] = field(default_factory=dict)  # entry -> responses (epochs)
    verdicts: dict[str, tuple[int, int]] = field(default_factory=dict)  # criterion -> (yes, verdicts)
    by_epoch: dict[int, list[int]] = field(default_factory=dict)  # epoch -> [yes, verdicts]

    def score(self, criterion: str, entry_id: int) -> float:
        return self.yes[criterion].get(entry_id, 0) / self.responses[entry_id]

    def overall(self, entry_id: int, criteria: list[str]) -> float:
        return sum(self.score(c, entry_id) for c in criteria) / len(criteria)


def _criterion_texts(session: Session, experiment: Experiment) -> dict[int, str]:
    return {c.id: c.label or c.criterion_str for c in results.criteria_of(session, experiment)}


def outcomes(session: Session, experiment: Experiment) -> Outcomes:
    """Every response and verdict of the experiment, folded per test case in one pass."""
    texts = _criterion_texts(session, experiment)
    folded = Outcomes(experiment, criteria=list(dict.fromkeys(texts.values())))
    folded.yes = {text: defaultdict(int) for text in folded.criteria}
    totals: dict[str, list[int]] = {text: [0, 0] for text in folded.criteria}
    for entry_id, _epoch in session.execute(
        select(PromptResponse.entry_id, PromptResponse.epoch).where(PromptResponse.experiment_id == experiment.id)
    ):
        folded.responses[entry_id] = folded.responses.get(entry_id, 0) + 1
    verdicts = (
        select(PromptResponse.entry_id, PromptResponse.epoch, Rating.criterion_id, Rating.rating)
        .join(Rating, Rating.response_id == PromptResponse.id)
        .where(PromptResponse.experiment_id == experiment.id, Rating.rating.is_not(None))
    )
    for entry_id, epoch, criterion_id, verdict in session.execute(verdicts):
        text, passed = texts[criterion_id], verdict == "YES"
        folded.yes[text][entry_id] += passed
        totals[text][0] += passed
        totals[text][1] += 1
        epoch_total = folded.by_epoch.setdefault(epoch, [0, 0])
        epoch_total[0] += passed
        epoch_total[1] += 1
    folded.verdicts = {text: (yes, n) for text, (yes, n) in totals.items()}
    return folded


# ---- the comparison's shapes


@dataclass
class ExperimentRates:
    id: int
    name: str
    pass_rate: st.Proportion
    by_criterion: dict[str, st.Proportion]
    by_epoch: dict[int, st.Proportion]
    cases: int


@dataclass
class CriterionTest:
    """B against A on one criterion, over the cases both experiments have."""

    criterion: str
    n: int
    a_rate: float | None
    b_rate: float | None
    b_only: int  # cases passing in B and failing in A
    a_only: int
    effect: float  # B's pass rate minus A's, on the matched cases
    interval: st.Interval | None
    p_value: float | None  # exact McNemar
    p_adjusted: float | None = None  # Holm across the pair's criteria
    verdict: st.Verdict = "no detectable difference"
    verdict_text: str = ""

    def decide(self, p_adjusted: float | None) -> None:
        self.p_adjusted = p_adjusted
        self.verdict = st.verdict(self.effect, p_adjusted)
        self.verdict_text = st.verdict_text(self.verdict, self.n)


@dataclass
class OverallTest:
    """B against A on the mean score over every shared criterion (paired bootstrap)."""

    n: int
    a_mean: float | None
    b_mean: float | None
    effect: float
    interval: st.Interval | None
    p_value: float | None
    verdict: st.Verdict
    verdict_text: str


@dataclass
class PairTest:
    a_id: int
    b_id: int
    overall: OverallTest
    criteria: list[CriterionTest]


@dataclass
class Comparison:
    experiments: list[ExperimentRates]
    criteria: list[str]  # every criterion text of any experiment, in first-seen order
    pairs: list[PairTest]  # each experiment after the first against the first
    confidence: float = st.CONFIDENCE


def rates_of(folded: Outcomes) -> ExperimentRates:
    """Wilson intervals for the experiment's pass rates: overall, per criterion and per epoch."""
    yes = sum(y for y, _ in folded.verdicts.values())
    total = sum(n for _, n in folded.verdicts.values())
    return ExperimentRates(
        id=folded.experiment.id,
        name=folded.experiment.name,
        pass_rate=st.wilson(yes, total),
        by_criterion={text: st.wilson(y, n) for text, (y, n) in folded.verdicts.items()},
        by_epoch={epoch: st.wilson(y, n) for epoch, (y, n) in sorted(folded.by_epoch.items())},
        cases=len(folded.responses),
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _criterion_test(a: Outcomes, b: Outcomes, criterion: str, cases: list[int]) -> CriterionTest:
    a_pass = [float(a.score(criterion, e) > 0.5) for e in cases]
    b_pass = [float(b.score(criterion, e) > 0.5) for e in cases]
    b_only = sum(pb > pa for pa, pb in zip(a_pass, b_pass, strict=True))
    a_only = sum(pa > pb for pa, pb in zip(a_pass, b_pass, strict=True))
    paired = st.paired_bootstrap(a_pass, b_pass)
    a_rate, b_rate = _mean(a_pass), _mean(b_pass)
    p_value = st.mcnemar_exact(b_only, a_only)
    return CriterionTest(criterion, len(cases), a_rate, b_rate, b_only, a_only, paired.effect, paired.interval, p_value)


def _overall_test(a: Outcomes, b: Outcomes, criteria: list[str], cases: list[int]) -> OverallTest:
    a_scores = [a.overall(e, criteria) for e in cases] if criteria else []
    b_scores = [b.overall(e, criteria) for e in cases] if criteria else []
    paired = st.paired_bootstrap(a_scores, b_scores)
    decided = st.verdict(paired.effect, paired.p_value)
    return OverallTest(
        paired.n,
        _mean(a_scores),
        _mean(b_scores),
        paired.effect,
        paired.interval,
        paired.p_value,
        decided,
        st.verdict_text(decided, paired.n),
    )


def pair_test(a: Outcomes, b: Outcomes) -> PairTest:
    """B against A on the test cases both have and the criteria (by text) both have."""
    cases = sorted(set(a.responses) & set(b.responses))
    shared = [c for c in a.criteria if c in b.criteria]
    tests = [_criterion_test(a, b, c, cases) for c in shared]
    for test, adjusted in zip(tests, st.holm([t.p_value for t in tests]), strict=True):
        test.decide(adjusted)
    return PairTest(a.experiment.id, b.experiment.id, _overall_test(a, b, shared, cases), tests)


def check_ids(ids: list[int]) -> list[int]:
    """2 to 8 distinct experiment ids, in the given order (the first is the baseline)."""
    if len(set(ids)) != len(ids):
        raise Invalid("query.ids: each experiment may appear once")
    if not 2 <= len(ids) <= MAX_EXPERIMENTS:
        raise Invalid(f"query.ids: give 2 to {MAX_EXPERIMENTS} experiment ids, got {len(ids)}")
    return ids


def load(session: Session, project_id: int, ids: list[int]) -> list[Outcomes]:
    """The folded outcomes of the project's experiments `ids` (2 to 8, distinct), in that order."""
    return [outcomes(session, owned(session, Experiment, project_id, i, "Experiment")) for i in check_ids(ids)]


def compare_outcomes(folded: list[Outcomes]) -> Comparison:
    """Each experiment after the first tested against it, with every experiment's intervals."""
    baseline, *others = folded
    return Comparison(
        experiments=[rates_of(f) for f in folded],
        criteria=list(dict.fromkeys(text for f in folded for text in f.criteria)),
        pairs=[pair_test(baseline, other) for other in others],
    )


def compare(session: Session, project_id: int, ids: list[int]) -> Comparison:
    """Compare the project's experiments `ids` (2 to 8); each one after the first is tested against it."""
    return compare_outcomes(load(session, project_id, ids))
