"""Judge requests: detection, the verdict rule, and verdict/reasoning rendering.

The rule (also in README.md): the verdict is ``NO`` if the response text contains ``fail``
(case-insensitive) or the criterion text contains ``[no]`` (case-insensitive); otherwise ``YES``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["YES", "NO"]

RESPONSE_OPEN, RESPONSE_CLOSE = "<response>", "</response>"
CRITERION_OPEN, CRITERION_CLOSE = "<criterion>", "</criterion>"

# Sentences avoid the substrings "yes"/"no" so a sloppy verdict parser can't misread them.
REASONING_FAIL_WORD = "Rule 1 (fail word): the response contains the word 'fail', so the criterion is judged unmet."
REASONING_REJECT_MARKER = (
    "Rule 2 (rejection marker): the criterion carries the rejection marker, so it is judged unmet."
)
REASONING_DEFAULT = (
    "Rule 3 (default): the response lacks the fail word and the criterion lacks the rejection marker, "
    "so the criterion is judged met."
)
JUNK_TEXT = "Hmm, this is a tricky one. Let me think about it more later."
"""What a judge request gets with ``judge_junk``: contains neither a verdict nor JSON."""

_YES_WORDS = frozenset({"yes", "y", "true", "pass", "passed", "met", "1"})
_NO_WORDS = frozenset({"no", "n", "false", "fail", "failed", "unmet", "0"})


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """The rated response and the criterion extracted from a judge prompt."""

    response: str
    criterion: str


def verdict(response_text: str, criterion_text: str) -> Verdict:
    """Return the fake judge's verdict: ``"NO"`` if the response contains ``fail`` or the
    criterion contains ``[no]`` (both case-insensitive), else ``"YES"``."""
    return "NO" if _rule(response_text, criterion_text) < 3 else "YES"


def reasoning(response_text: str, criterion_text: str) -> str:
    """Return the deterministic sentence naming the rule that decided :func:`verdict`."""
    return (REASONING_FAIL_WORD, REASONING_REJECT_MARKER, REASONING_DEFAULT)[_rule(response_text, criterion_text) - 1]


def _rule(response_text: str, criterion_text: str) -> int:
    if "fail" in response_text.lower():
        return 1
    if "[no]" in criterion_text.lower():
        return 2
    return 3


def find_judge_input(texts: Sequence[tuple[str, str]]) -> JudgeInput | None:
    """Find the judge payload in ``(role, text)`` message pairs, or ``None`` if it isn't a judge request.

    The last user message holding both tag pairs wins, then any other message; this skips a
    system prompt that merely describes the tags.
    """
    ordered = [t for r, t in reversed(texts) if r == "user"] + [t for r, t in reversed(texts) if r != "user"]
    for text in ordered:
        response = _between(text, RESPONSE_OPEN, RESPONSE_CLOSE)
        criterion = _between(text, CRITERION_OPEN, CRITERION_CLOSE)
        if response is not None and criterion is not None:
            return JudgeInput(response, criterion)
    return None


def _between(text: str, opening: str, closing: str) -> str | None:
    start = text.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = text.find(closing, start)
    return None if end < 0 else text[start:end]


def verdict_value(value: Verdict, schema: Mapping[str, Any]) -> Any:
    """Render ``value`` to fit the schema of a ``rating``/``verdict`` property.

    Enums get their case-insensitive YES/NO (or pass/fail, true/false) member, booleans get
    true/false, numbers get the top/bottom of their range, strings get ``"YES"``/``"NO"``.
    """
    yes = value == "YES"
    if "const" in schema:
        return schema["const"]
    if "enum" in schema and schema["enum"]:
        return _enum_member(list(schema["enum"]), yes)
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or ["string"])
    if "string" in kinds:
        return value
    if "boolean" in kinds:
        return yes
    if "integer" in kinds or "number" in kinds:
        bound = schema.get("maximum" if yes else "minimum")
        return bound if bound is not None else int(yes)
    return value


def _enum_member(members: list[Any], yes: bool) -> Any:
    words = _YES_WORDS if yes else _NO_WORDS
    for member in members:
        if str(member).strip().lower() in words:
            return member
    return members[0] if yes else members[-1]
