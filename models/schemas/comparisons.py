"""Assay extension: the wire shapes of `GET experiments/compare` (the SDK has no such call)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from models.schemas.common import MAX_ID, RequestModel, WireModel


class CompareQuery(RequestModel):
    ids: list[int] = Field(
        description="2 to 8 experiment ids, comma-separated (`ids=4,7,9`); the first is the baseline",
    )

    @field_validator("ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return value

    @field_validator("ids")
    @classmethod
    def _in_range(cls, value: list[int]) -> list[int]:
        if any(not 1 <= i <= MAX_ID for i in value):
            raise ValueError(f"ids run from 1 to {MAX_ID}")
        return value


class IntervalOut(WireModel):
    low: float
    high: float


class ProportionOut(WireModel):
    successes: int
    n: int
    rate: float | None = Field(description="successes / n; null without verdicts")
    interval: IntervalOut | None = Field(description="95% Wilson score interval")


class ExperimentRatesOut(WireModel):
    id: int
    name: str
    cases: int = Field(description="test cases with at least one response")
    pass_rate: ProportionOut = Field(description="YES over all verdicts")
    by_criterion: dict[str, ProportionOut] = Field(description="keyed by criterion text (label when set)")
    by_epoch: dict[int, ProportionOut]


Verdict = Literal["B better", "A better", "no detectable difference"]


class CriterionTestOut(WireModel):
    criterion: str
    n: int = Field(description="test cases matched in both experiments")
    a_rate: float | None
    b_rate: float | None
    b_only: int = Field(description="cases passing in B only")
    a_only: int = Field(description="cases passing in A only")
    effect: float = Field(description="B's pass rate minus A's on the matched cases")
    interval: IntervalOut | None = Field(description="95% paired bootstrap interval of the effect")
    p_value: float | None = Field(description="exact McNemar; null without discordant cases")
    p_adjusted: float | None = Field(description="Holm-adjusted across the pair's criteria")
    verdict: Verdict
    verdict_text: str


class OverallTestOut(WireModel):
    n: int
    a_mean: float | None = Field(description="mean per-case score (share of YES over shared criteria)")
    b_mean: float | None
    effect: float
    interval: IntervalOut | None = Field(description="95% paired bootstrap interval (seeded)")
    p_value: float | None = Field(description="paired bootstrap, two-sided")
    verdict: Verdict
    verdict_text: str


class PairTestOut(WireModel):
    a_id: int = Field(description="the baseline (A)")
    b_id: int
    overall: OverallTestOut
    criteria: list[CriterionTestOut]


class ComparisonOut(WireModel):
    experiments: list[ExperimentRatesOut]
    criteria: list[str]
    pairs: list[PairTestOut] = Field(description="each experiment after the first against the first")
    confidence: float
