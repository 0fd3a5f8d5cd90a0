"""Logging for the API, the workers and the sweeper: one JSON object per line (python-json-logger),
with the request, project, job and chunk the line is about.

Those ids live in context variables: a request binds its request id and project, a job run its
job and project, a chunk's task its chunk, and asyncio tasks inherit them, so every line logged
on the way (also by libraries) carries them without being passed along.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("request_id", "project_id", "job_id", "chunk_id")
_context: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"assay_log_{name}", default=None) for name in FIELDS
}
# One line per model call at INFO costs CPU on the hot path and buries the process's own log.
QUIET_LOGGERS = ("httpx", "openai", "aiohttp.access", "urllib3")


def bind(**values: Any) -> None:
    """Attach ids (request_id, project_id, job_id, chunk_id) to every later line of this context."""
    for name, value in values.items():
        _context[name].set(value)


def clear() -> None:
    for var in _context.values():
        var.set(None)


class ContextFilter(logging.Filter):
    """Copies the bound ids and the process's role onto each record."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        for name, var in _context.items():
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter("%(asctime)s %(levelname)s %(component)s %(name)s: %(message)s")
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def dict_config(component: str, log_format: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping: every logger to stderr in `log_format` ("json" or "text"),
    tagged with `component`; gunicorn takes it as its `logconfig_dict`, so its own lines look alike."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"assay": {"()": formatter, "log_format": log_format}},
        "filters": {"context": {"()": ContextFilter, "component": component}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "assay",
                "filters": ["context"],
                "stream": sys.stderr,
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": False},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }


def configure(component: str, log_format: str = "json", level: str = "INFO") -> None:
    """Apply `dict_config` to this process; warnings become log lines too."""
    logging.config.dictConfig(dict_config(component, log_format, level))
    logging.captureWarnings(True)
