"""Every setting in one place: defaults, then the environment, then an explicit override mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from limits import parse_many
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_database_url() -> str:
    data_dir = Path(platformdirs.user_data_dir("assay"))
    return f"sqlite:///{data_dir / 'assay.db'}"


class Settings(BaseSettings):
    """Deployment settings. Each field's environment variable is listed in README.md and .env.example."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default_factory=_default_database_url,
        validation_alias=AliasChoices("DATABASE_URL", "ASSAY_DATABASE_URL", "database_url"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "ASSAY_REDIS_URL", "redis_url")
    )
    auto_migrate: bool = True
    # Log lines of the API, workers and sweeper: one JSON object each ("json") or plain text ("text").
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Signs the Studio's session cookie; it must be the same on every API process. Unset, the Studio
    # refuses logins (a random per-process key would log users out whenever another worker answered).
    secret_key: str | None = None
    # Failed authentications (API key, bearer token, Studio login) per client address and window; past it
    # a 429 with Retry-After. Requests per API key or token (empty: no limit; `assay up` embedded turns it off).
    auth_failure_limit: str = "20/minute"
    rate_limit: str = "1200/minute"

    @field_validator("auth_failure_limit", "rate_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        """`limits` syntax (`20/minute`, `5000 per hour`) or empty for none: refused at start, not per request."""
        if value.strip():
            parse_many(value)
        return value.strip()

    # Fernet keys (comma-separated, newest first) encrypting provider keys at rest; unset, a key derived
    # from secret_key, else a key file in the user data folder (see services.crypto).
    encryption_keys: str = ""
    # The Studio's cookie is sent over HTTPS only (browsers also allow it on http://localhost and 127.0.0.1).
    studio_secure_cookie: bool = True
    # Large enough for a 100,000-row JSONL upload of small rows.
    max_request_bytes: int = 64 * 1024 * 1024
    page_size: int = 50
    sqlite_busy_timeout_ms: int = 30_000

    # Job engine.
    job_chunk_size: int = 10
    job_fanout: int = 8
    job_lease_seconds: float = 20.0
    job_time_limit_seconds: int = 10 * 3600
    max_active_jobs_per_project: int = 100
    # Items (entry x epoch, or batch items) one job may have: its chunks are written in one request.
    max_job_items: int = Field(default=1_000_000, ge=1)
    worker_max_inflight: int = 64
    worker_scout_seconds: float = 1.0
    # `assay worker` serves its pool's Prometheus metrics on this port (unset: no metrics server).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    failure_streak_limit: int = 5
    # How long workers wait out a database or Redis that went away (retrying with backoff on fresh
    # connections) before an item or a job fails because of it.
    db_outage_seconds: float = Field(default=60.0, ge=0)
    redis_outage_seconds: float = Field(default=60.0, ge=0)
    # A chunk started this many times without finishing (its worker died each time) fails its job.
    max_chunk_attempts: int = Field(default=5, ge=1)
    # Cache identical model calls for every experiment (each experiment can also opt in alone).
    llm_cache: bool = False
    # Evaluator criteria run in child processes of each worker process, each evaluation with a time limit
    # (past it the child is killed and the rating fails).
    evaluator_timeout_seconds: float = Field(default=5.0, gt=0)
    evaluator_processes: int = Field(default=2, ge=1)

    llm_base_url: str | None = None
    # Hosts, addresses or CIDR networks (comma-separated) that LLM configs may call although they are not
    # public addresses; every other loopback, private, link-local or multicast target is refused.
    llm_allowed_hosts: str = ""
    llm_model: str = "gpt-4o-mini"
    judge_model: str | None = None
    # Named judges for `rating_version`, e.g. {"v1": "gpt-4o-mini", "v2": "gpt-4.1"}; the default
    # judge (ASSAY_JUDGE_MODEL) is "default", which null, "latest" and unknown versions resolve to.
    judge_versions: dict[str, str] = {}
    llm_max_connections: int = 32
    # The HTTP path of model calls: "aiohttp" (one aiohttp session per provider, the answer read as JSON)
    # or "openai" (the openai package's client, about five times the CPU per call).
    llm_transport: Literal["aiohttp", "openai"] = "aiohttp"
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "ASSAY_OPENAI_API_KEY", "openai_api_key")
    )

    def merged(self, overrides: dict[str, Any] | None) -> Settings:
        """Return a copy with explicit values (for example a test config) layered on top."""
        return self.model_copy(update=overrides or {})


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Read defaults and the environment now (never at import time), then apply overrides."""
    return Settings().merged(overrides)
