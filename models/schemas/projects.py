from __future__ import annotations

from pydantic import Field

from models.schemas.common import RequestModel, UtcDatetime, WireModel


class OrganizationOut(WireModel):
    id: int
    name: str
    domain: str
    stripe_subscription_id: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ProjectOut(WireModel):
    id: int
    name: str
    description: str
    organization: OrganizationOut
    public_in_org: bool = False
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ProjectCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    organization_id: int | None = None


class VersionCheck(RequestModel):
    current_sdk_version: str | None = None


class VersionCheckOut(WireModel):
    is_compatible: bool
    required_sdk_version: str
    current_sdk_version: str | None = None
