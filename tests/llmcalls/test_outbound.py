"""The outbound policy again at call time (a name may resolve elsewhere after the config was stored),
and what a provider's error body may show: a bounded, printable excerpt."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from fakellm import FakeLLM
from llmcalls import ModelSpec, chat
from llmcalls.errors import PROVIDER_EXCERPT_CHARS, ErrorKind, LLMCallError
from llmcalls.outbound import OutboundPolicy
from tests.listener import Listener

Spec = Callable[..., ModelSpec]
Run = Callable[[Any], Any]
HI = [{"role": "user", "content": "Hi"}]


def test_a_refused_url_is_never_called(spec: Spec, run: Run) -> None:
    with Listener() as target:
        refused = spec(base_url=f"http://127.0.0.1:{target.port}/v1", outbound=OutboundPolicy(), max_retries=0)
        with pytest.raises(LLMCallError) as caught:
            run(chat(refused, HI))
    assert caught.value.kind == ErrorKind.REFUSED and not caught.value.retryable
    assert "llm_base_url refused" in str(caught.value) and "non-public address" in str(caught.value)
    assert not target.contacted


def test_an_allowed_host_is_called(fake: FakeLLM, spec: Spec, run: Run) -> None:
    allowed = spec(outbound=OutboundPolicy.parse(urlsplit(fake.base_url).netloc))
    assert run(chat(allowed, HI)).content
    assert fake.stats()["calls"] == 1


def test_the_operators_own_url_is_not_checked(fake: FakeLLM, spec: Spec, run: Run) -> None:
    assert run(chat(spec(outbound=None), HI)).content


BANNER = "INTERNAL-BANNER\x1b[31m db password: hunter2\r\n\x00" + "x" * 20_000


def test_a_provider_error_body_reaches_users_only_as_a_bounded_printable_excerpt(spec: Spec, run: Run) -> None:
    body = json.dumps({"error": {"message": BANNER}}).encode()
    reply = b"HTTP/1.1 500 Oops\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with Listener(reply) as target:
        url = f"http://127.0.0.1:{target.port}/v1"
        allowed = spec(base_url=url, outbound=OutboundPolicy.parse(f"127.0.0.1:{target.port}"), max_retries=0)
        with pytest.raises(LLMCallError) as caught:
            run(chat(allowed, HI))
    message = caught.value.provider_message or ""
    assert target.contacted and "INTERNAL-BANNER" in message
    assert len(message) <= PROVIDER_EXCERPT_CHARS and message.isprintable()
    assert len(str(caught.value)) < PROVIDER_EXCERPT_CHARS + 300
