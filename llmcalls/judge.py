"""The LLM judge: does a response meet a yes/no criterion?"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .calls import Message, ModelSpec
from .errors import JudgeParseError
from .limiter import Limiter
from .structured import (
    OutputFormat,
    Structured,
    StructuredTask,
    call_structured,
    extract_json,
    schema_instructions,
)

Rating = Literal["YES", "NO"]
JudgeMode = Literal["fast", "detailed"]

PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")
VERDICT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "rating": {"type": "string", "enum": ["YES", "NO"]},
    },
    "required": ["reasoning", "rating"],
    "additionalProperties": False,
}
PARSE_ATTEMPTS = 3

_TASK = (
    "You are an impartial evaluator. You get a criterion (between <criterion> and </criterion>) and "
    "a response written by an AI assistant (between <response> and </response>). Decide whether the "
    "response meets the criterion. Judge only that criterion, and answer YES only if it is met."
)
_HOW = {
    "fast": "Give a brief reasoning (one or two sentences), then your rating.",
    "detailed": (
        "Reason step by step: restate what the criterion requires, check the response against each "
        "requirement, note anything that is missing or wrong, and only then give your rating."
    ),
}
_OUTPUT = {
    "json_schema": "Answer with your reasoning and a rating of YES or NO.",
    "json_object": schema_instructions(VERDICT_SCHEMA),
    "text": "Write your reasoning first, then end with a final line that is exactly `Verdict: YES` or `Verdict: NO`.",
}
_VERDICT_LINE = re.compile(
    r"^[\s*#>_-]*(?:final\s+)?(?:verdict|rating|answer)[\s*_]*[:=][\s*_\"'`]*(yes|no)\b[\s*_\"'`.!]*$",
    re.IGNORECASE | re.MULTILINE,
)
_RATINGS: Mapping[str, Rating] = {"YES": "YES", "NO": "NO"}
_BARE = re.compile(r"^[\s*_\"'`]*(yes|no)[\s*_\"'`.!]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's rating of one response against one criterion."""

    rating: Rating
    reasoning: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    input_cost: float
    output_cost: float
    duration: float
    calls: int
    """Answers requested (more than one when an answer could not be read)."""
    output_format: OutputFormat
    trials: tuple[tuple[Rating, str], ...] = ()
    """Every (rating, reasoning) when the judge was asked several times (see :func:`judge_k`)."""

    @property
    def passed(self) -> bool:
        """Whether the criterion is met."""
        return self.rating == "YES"


async def judge(
    spec: ModelSpec,
    response_text: str,
    criterion_text: str,
    *,
    mode: JudgeMode = "fast",
    variables: Mapping[str, Any] | None = None,
    limiter: Limiter | None = None,
    timeout: float | None = None,
) -> Verdict:
    """Rate ``response_text`` against ``criterion_text`` (``{{ var }}`` filled from ``variables``).

    ``timeout`` bounds the whole judgement, re-asks included. Raises
    :class:`~llmcalls.errors.JudgeParseError` if no answer holds a readable verdict, and
    :class:`~llmcalls.errors.LLMCallError` if the model cannot be called.
    """
    if mode not in _HOW:
        raise ValueError(f"mode must be 'fast' or 'detailed', got {mode!r}")
    started = time.monotonic()
    criterion = fill_placeholders(criterion_text, variables or {})
    task = StructuredTask(
        name="verdict",
        schema=VERDICT_SCHEMA,
        messages=lambda output_format: judge_messages(response_text, criterion, mode, output_format),
        parse=parse_verdict,
        parse_attempts=PARSE_ATTEMPTS,
    )
    deadline = None if timeout is None else started + timeout
    answer = await call_structured(spec, task, limiter=limiter, deadline=deadline)
    return _verdict(answer, time.monotonic() - started)


def majority(ratings: Sequence[Rating]) -> Rating:
    """The verdict most trials gave (an odd number of trials never ties)."""
    return "YES" if 2 * sum(r == "YES" for r in ratings) > len(ratings) else "NO"


async def judge_k(
    spec: ModelSpec,
    response_text: str,
    criterion_text: str,
    *,
    trials: int = 1,
    mode: JudgeMode = "fast",
    variables: Mapping[str, Any] | None = None,
    limiter: Limiter | None = None,
    timeout: float | None = None,
) -> Verdict:
    """:func:`judge` asked ``trials`` times (odd) at once: the majority is the rating, every trial's rating
    and reasoning is kept in ``trials``, tokens and costs are summed. A trial that fails fails the rating."""
    if trials < 1 or trials % 2 == 0:
        raise ValueError(f"trials must be a positive odd number, got {trials}")
    calls = [
        judge(spec, response_text, criterion_text, mode=mode, variables=variables, limiter=limiter, timeout=timeout)
        for _ in range(trials)
    ]
    if trials == 1:
        return await calls[0]
    verdicts = await asyncio.gather(*calls)
    rating = majority([v.rating for v in verdicts])
    return dataclasses.replace(
        next(v for v in verdicts if v.rating == rating),
        prompt_tokens=sum(v.prompt_tokens for v in verdicts),
        completion_tokens=sum(v.completion_tokens for v in verdicts),
        reasoning_tokens=sum(v.reasoning_tokens for v in verdicts),
        input_cost=sum(v.input_cost for v in verdicts),
        output_cost=sum(v.output_cost for v in verdicts),
        duration=max(v.duration for v in verdicts),
        calls=sum(v.calls for v in verdicts),
        trials=tuple((v.rating, v.reasoning) for v in verdicts),
    )


def _verdict(answer: Structured[tuple[Rating, str]], duration: float) -> Verdict:
    rating, reasoning = answer.value
    return Verdict(
        rating=rating,
        reasoning=reasoning,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        reasoning_tokens=answer.reasoning_tokens,
        input_cost=answer.input_cost,
        output_cost=answer.output_cost,
        duration=duration,
        calls=len(answer.calls),
        output_format=answer.output_format,
    )


def fill_placeholders(text: str, variables: Mapping[str, Any]) -> str:
    """Replace ``{{ name }}`` with ``variables[name]``; unknown names are left as they are."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(variables[name]) if name in variables else match.group(0)

    return PLACEHOLDER.sub(value, text)


def judge_messages(response_text: str, criterion: str, mode: JudgeMode, output_format: OutputFormat) -> list[Message]:
    """The judge prompt: the task in the system message, criterion and response in the user message."""
    system = "\n\n".join((_TASK, _HOW[mode], _OUTPUT[output_format]))
    # The criterion goes first: it is ours, whereas the response may contain anything, tags included.
    user = f"<criterion>{criterion}</criterion>\n\n<response>{response_text}</response>"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_verdict(content: str) -> tuple[Rating, str]:
    """Read ``(rating, reasoning)`` from a judge answer: JSON (fenced or not) or a verdict line.

    Raises :class:`JudgeParseError` when there is no unambiguous verdict.
    """
    data = extract_json(content)
    if isinstance(data, dict):
        parsed = _from_json(data)
        if parsed is not None:
            return parsed
    parsed = _from_text(content)
    if parsed is None:
        raise JudgeParseError(f"no verdict in the judge's answer: {_excerpt(content)!r}")
    return parsed


def _from_json(data: dict[str, Any]) -> tuple[Rating, str] | None:
    lowered = {str(key).lower(): value for key, value in data.items()}
    raw = lowered.get("rating", lowered.get("verdict"))
    rating = _rating(raw)
    if rating is None:
        return None
    return rating, str(lowered.get("reasoning") or "").strip()


def _rating(raw: Any) -> Rating | None:
    if isinstance(raw, bool):
        return "YES" if raw else "NO"
    if not isinstance(raw, str):
        return None
    return _RATINGS.get(raw.strip().strip(".!\"'`*").upper())


def _from_text(content: str) -> tuple[Rating, str] | None:
    if bare := _BARE.match(content):
        return _RATINGS[bare.group(1).upper()], ""
    matches = list(_VERDICT_LINE.finditer(content))
    if not matches:
        return None
    # The prompt asks for the verdict last, so a final line outranks any earlier mention.
    last = matches[-1]
    reasoning = content[: last.start()].strip()
    reasoning = re.sub(r"^\W*reasoning\W*:\s*", "", reasoning, flags=re.IGNORECASE)
    return _RATINGS[last.group(1).upper()], reasoning


def _excerpt(content: str, limit: int = 200) -> str:
    return content if len(content) <= limit else content[:limit] + "…"
