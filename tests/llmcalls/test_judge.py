"""The judge against the fake server's verdict rule, in every output format, and its parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fakellm import FakeLLM, verdict
from llmcalls import FORMATS, JudgeParseError, ModelSpec, Verdict, judge
from llmcalls.judge import fill_placeholders, parse_verdict

Run = Callable[..., Any]
Spec = Callable[..., ModelSpec]
# Every wait here is bounded well below this; a hang should fail fast with a stack dump.
pytestmark = pytest.mark.timeout(120)
CASES = [
    ("The capital of France is Paris.", "Does the answer name a city?"),
    ("I fail to see the question.", "Does the answer name a city?"),
    ("The capital of France is Paris.", "[No] Is the answer in German?"),
    ("This will FAIL.", "[no] Is it short?"),
]


@pytest.mark.parametrize(("response", "criterion"), CASES)
@pytest.mark.parametrize("mode", ["fast", "detailed"])
def test_verdict_follows_the_rule_with_json_schema(
    spec: Spec, run: Run, response: str, criterion: str, mode: str
) -> None:
    result: Verdict = run(judge(spec(), response, criterion, mode=mode))

    assert result.rating == verdict(response, criterion)
    assert result.passed is (result.rating == "YES")
    assert result.reasoning.startswith("Rule ")
    assert result.output_format == "json_schema"
    assert result.calls == 1


@pytest.mark.parametrize(("response", "criterion"), CASES)
def test_falls_back_to_json_mode_when_json_schema_is_refused(
    fake: FakeLLM, spec: Spec, run: Run, response: str, criterion: str
) -> None:
    fake.configure(refuse_json_schema=True)

    result = run(judge(spec(), response, criterion))

    assert (result.rating, result.output_format) == (verdict(response, criterion), "json_object")
    assert result.reasoning.startswith("Rule ")


def test_the_fallback_is_remembered(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(refuse_json_schema=True)

    async def three_judgements() -> list[Verdict]:
        return [await judge(spec(), response, criterion) for response, criterion in CASES[:3]]

    results = run(three_judgements())

    assert [result.rating for result in results] == [verdict(*case) for case in CASES[:3]]
    assert [record["status"] for record in fake.requests()] == [400, 200, 200, 200]
    assert fake.requests()[0]["fault"] == "refuse_json_schema"


@pytest.mark.parametrize(("response", "criterion"), CASES)
def test_plain_text_verdicts(fake: FakeLLM, spec: Spec, run: Run, response: str, criterion: str) -> None:
    FORMATS.remember(spec(), "text")

    result = run(judge(spec(), response, criterion))

    assert (result.rating, result.output_format) == (verdict(response, criterion), "text")
    assert result.reasoning.startswith("Rule ")


def test_placeholders_are_filled_before_judging(fake: FakeLLM, spec: Spec, run: Run) -> None:
    criterion = "{{marker}} Does the answer mention {{ topic }}?"

    rejected = run(judge(spec(), "Paris.", criterion, variables={"marker": "[no]", "topic": "France"}))
    accepted = run(judge(spec(), "Paris.", criterion, variables={"marker": "", "topic": "France"}))

    assert (rejected.rating, accepted.rating) == ("NO", "YES")


def test_unparseable_answers_fail_the_rating(fake: FakeLLM, spec: Spec, run: Run) -> None:
    fake.configure(judge_junk=True)

    with pytest.raises(JudgeParseError) as caught:
        run(judge(spec(input_price_per_mtok=1.0), "Paris.", "Is it a city?"))

    assert "no verdict" in str(caught.value)
    assert "Hmm, this is a tricky one" in str(caught.value)
    assert "gave up after 3 unusable answers" in str(caught.value)
    assert len(caught.value.calls) == 3
    assert fake.stats()["calls"] == 3


def test_tokens_and_cost_are_reported(spec: Spec, run: Run) -> None:
    result = run(judge(spec(input_price_per_mtok=3.0, output_price_per_mtok=6.0), "Paris.", "Is it a city?"))

    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.input_cost == pytest.approx(result.prompt_tokens * 3.0 / 1_000_000)
    assert result.output_cost == pytest.approx(result.completion_tokens * 6.0 / 1_000_000)


def test_unknown_mode_is_rejected(spec: Spec, run: Run) -> None:
    with pytest.raises(ValueError):
        run(judge(spec(), "Paris.", "Is it a city?", mode="sloppy"))  # type: ignore[arg-type]


def test_fill_placeholders_leaves_unknown_names() -> None:
    assert fill_placeholders("{{ a }} and {{b}} and {{ c }}", {"a": 1, "b": "two"}) == "1 and two and {{ c }}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"reasoning": "ok", "rating": "YES"}', ("YES", "ok")),
        ('```json\n{"reasoning": "bad", "rating": "no"}\n```', ("NO", "bad")),
        ('Sure! {"Rating": "Yes.", "reasoning": "fine"}', ("YES", "fine")),
        ('{"verdict": false, "reasoning": "r"}', ("NO", "r")),
        ("Reasoning: it names Paris.\nVerdict: YES", ("YES", "it names Paris.")),
        ("The answer is off topic.\n**Rating:** no", ("NO", "The answer is off topic.")),
        (
            "Verdict: NO\nOn reflection it is fine.\nFinal verdict: Yes",
            ("YES", "Verdict: NO\nOn reflection it is fine."),
        ),
        ("yes", ("YES", "")),
        (" NO. ", ("NO", "")),
    ],
)
def test_parse_verdict_reads(content: str, expected: tuple[str, str]) -> None:
    assert parse_verdict(content) == expected


@pytest.mark.parametrize(
    "content",
    [
        "Hmm, this is a tricky one. Let me think about it more later.",
        "I would say yes, probably, but no guarantees.",
        '{"reasoning": "unsure", "rating": "MAYBE"}',
        "Verdict: unclear",
        "",
    ],
)
def test_parse_verdict_never_guesses(content: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_verdict(content)


def test_judging_k_times_keeps_every_answer_and_sums_the_cost(fake: FakeLLM, spec: Spec, run: Run) -> None:
    from llmcalls import judge_k

    once = run(judge(spec(), "Paris.", "Is it a city?"))
    fake.reset()
    thrice = run(judge_k(spec(), "Paris.", "Is it a city?", trials=3))
    assert fake.stats()["by_kind"]["judge"] == 3
    assert [rating for rating, _ in thrice.trials] == ["YES", "YES", "YES"] and thrice.rating == "YES"
    assert thrice.prompt_tokens == 3 * once.prompt_tokens and thrice.calls == 3
    assert run(judge_k(spec(), "Paris.", "Is it a city?")).trials == ()  # once: no trials kept
    with pytest.raises(ValueError, match="odd"):
        run(judge_k(spec(), "Paris.", "Is it a city?", trials=2))


def test_the_majority_of_an_odd_number_of_answers() -> None:
    from llmcalls.judge import majority

    assert majority(["YES", "NO", "YES"]) == "YES"
    assert majority(["NO", "NO", "YES"]) == "NO"
    assert majority(["NO"]) == "NO"
