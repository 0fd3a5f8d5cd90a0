from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_serializer

from models.schemas.common import MAX_ID, PageQuery, RequestModel, WireModel

ReasoningEffort = Literal["minimal", "low", "medium", "high"]
Verbosity = Literal["low", "medium", "high"]


class LLMConfigFields(RequestModel):
    """The model and sampling settings shared by the create body and the response."""

    description: str | None = ""
    llm_base_url: str | None = Field(default=None, max_length=2000)
    api_version: str | None = Field(default=None, max_length=100)
    max_connections: int = Field(default=10, ge=1, le=10_000)
    inference_type: Literal["openai", "botario", "custom_api"] = "openai"
    max_retries: int | None = Field(default=None, ge=0, le=20)
    timeout: int | None = Field(default=None, ge=1, le=3600)
    system_message: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_ID)
    top_p: float | None = Field(default=None, ge=0, le=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    best_of: int | None = Field(default=None, ge=1, le=MAX_ID)
    top_k: int | None = Field(default=None, ge=0, le=MAX_ID)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Verbosity | None = None
    custom_api_config: dict[str, Any] | None = None
    custom_response_parser: str | None = None
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    output_price_per_mtok: float | None = Field(default=None, ge=0)


class LLMConfigCreate(LLMConfigFields):
    name: str = Field(min_length=1, max_length=500)
    llm_model_name: str = Field(min_length=1, max_length=500)
    api_key: str | None = None


class LLMConfigOut(LLMConfigFields, WireModel):
    id: int
    name: str
    llm_model_name: str
    api_key: str | None = None

    @field_serializer("api_key")
    def _mask(self, key: str | None) -> str | None:
        return mask_secret(key)


def mask_secret(key: str | None) -> str | None:
    """Never return a provider key in full: its last 4 characters recognise it (a short key shows none)."""
    if not key:
        return None
    return f"...{key[-4:]}" if len(key) > 12 else "****"


class LLMConfigQuery(PageQuery):
    name: str | None = None
