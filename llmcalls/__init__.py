"""The model-call layer: chat completions with retries, concurrency limits, the judge and generators.

Pure asyncio; no database, Flask or Celery. HTTP transports are cached per event loop, so code that runs
its own loop (a Celery task) should ``await close_all()`` before the loop ends.
"""

from .calls import ChatResult, ModelSpec, chat, limiter_for
from .clients import close_all, get_transport
from .errors import ErrorKind, JudgeParseError, LLMCallError, LLMError, LLMOutputError
from .generate import generate_criteria, generate_entry
from .judge import Verdict, fill_placeholders, judge, judge_k
from .limiter import Limiter, LocalLimiter, RedisLimiter
from .retry import RetryPolicy
from .structured import FORMATS, FormatMemory

__all__ = [
    "FORMATS",
    "ChatResult",
    "ErrorKind",
    "FormatMemory",
    "JudgeParseError",
    "LLMCallError",
    "LLMError",
    "LLMOutputError",
    "Limiter",
    "LocalLimiter",
    "ModelSpec",
    "RedisLimiter",
    "RetryPolicy",
    "Verdict",
    "judge_k",
    "chat",
    "close_all",
    "fill_placeholders",
    "generate_criteria",
    "generate_entry",
    "get_transport",
    "judge",
    "limiter_for",
]
