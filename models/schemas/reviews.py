"""Assay extension: human review of ratings (the SDK has no such call; its ratings stay the judge's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.schemas.common import RequestModel, UtcDatetime, WireModel


class ReviewIn(RequestModel):
    verdict: Literal["YES", "NO"] = Field(
        description="the person's verdict: the judge's to confirm it, the other to override"
    )
    note: str = Field(default="", max_length=10_000)
    reviewer: str = Field(default="", max_length=200, description="who reviewed (free text)")


class ReviewOut(WireModel):
    id: int
    rating_id: int
    verdict: str
    note: str
    reviewer: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class AgreementOut(WireModel):
    n: int = Field(description="reviewed ratings that have a judge's verdict")
    agreed: int
    rate: float | None
    both_yes: int
    both_no: int
    judge_yes_human_no: int
    judge_no_human_yes: int
    kappa: float | None = Field(description="Cohen's kappa; null when undefined (no pairs, or one answer only)")


class CriterionAgreementOut(WireModel):
    criterion: str
    agreement: AgreementOut


class ReviewedRatingOut(WireModel):
    rating_id: int
    response_id: int
    criterion: str
    judge: str | None = Field(description="the judge's verdict (null: the rating failed)")
    human: str
    note: str
    reviewer: str


class ExperimentReviewsOut(WireModel):
    experiment_id: int
    criteria: list[CriterionAgreementOut]
    reviews: list[ReviewedRatingOut]


class CriterionConsistencyOut(WireModel):
    criterion: str
    ratings: int = Field(description="ratings the judge answered several times")
    unanimous: int = Field(description="of them, those whose trials all agreed")
    agreement: float | None = Field(description="mean share of trials agreeing with their majority")
    flaky: bool = Field(description="agreement below flaky_below")


class ConsistencyOut(WireModel):
    experiment_id: int
    judge_trials: int
    flaky_below: float
    criteria: list[CriterionConsistencyOut]
