"""Projects, API keys and organization tokens. Secrets are shown once and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models.orm import ApiKey, Organization, OrgToken, Project, StudioSession, utcnow
from services.errors import Conflict, NotFound

DEFAULT_ORG = "default"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a project key (one project) or an organization token (its projects)."""

    organization_id: int
    project_id: int | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(32)}"


def default_organization(session: Session) -> Organization:
    org = session.scalar(select(Organization).order_by(Organization.id).limit(1))
    if org is None:
        org = Organization(name=DEFAULT_ORG, domain="localhost")
        session.add(org)
        session.flush()
    return org


def first_project(session: Session) -> Project | None:
    return session.scalar(select(Project).order_by(Project.id).limit(1))


def create_project(session: Session, name: str, description: str = "", organization_id: int | None = None) -> Project:
    org_id = organization_id or default_organization(session).id
    if session.scalar(select(Project.id).where(Project.organization_id == org_id, Project.name == name)):
        raise Conflict(f"Project {name!r} already exists")
    project = Project(organization_id=org_id, name=name, description=description)
    session.add(project)
    session.flush()
    return project


def create_api_key(session: Session, project_id: int, name: str = "", key: str | None = None) -> str:
    """Create a key for a project and return it; it cannot be read back later."""
    key = key or _new_secret("ak_")
    session.add(ApiKey(project_id=project_id, name=name, key_hash=hash_secret(key), prefix=key[:8]))
    session.flush()
    return key


def api_keys(session: Session, project_id: int | None = None) -> list[ApiKey]:
    """Every project key (or one project's), oldest first; only their prefixes can be shown."""
    query = select(ApiKey).order_by(ApiKey.id)
    if project_id is not None:
        query = query.where(ApiKey.project_id == project_id)
    return list(session.scalars(query))


def revoke_api_key(session: Session, key_id: int) -> ApiKey | None:
    """Delete a key (its Studio sessions go with it); returns it, or None when there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is not None:
        session.execute(delete(StudioSession).where(StudioSession.api_key_id == key_id))
        session.delete(key)
        session.flush()
    return key


def create_org_token(session: Session, organization_id: int, name: str = "") -> str:
    token = _new_secret("ot_")
    session.add(OrgToken(organization_id=organization_id, name=name, token_hash=hash_secret(token), prefix=token[:8]))
    session.flush()
    return token


def principal_for_key(session: Session, key: str) -> Principal | None:
    row = session.execute(
        select(Project.organization_id, ApiKey.project_id)
        .join(Project, Project.id == ApiKey.project_id)
        .where(ApiKey.key_hash == hash_secret(key))
    ).first()
    return Principal(organization_id=row[0], project_id=row[1]) if row else None


def api_key_for(session: Session, key: str) -> ApiKey | None:
    """The stored key matching a presented secret (the Studio keeps its id, never the secret)."""
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(key)))


def start_studio_session(session: Session, api_key: ApiKey, lifetime: timedelta) -> str:
    """A Studio session for the key, valid for `lifetime` whatever happens; returns the cookie's token."""
    now = utcnow()
    session.execute(delete(StudioSession).where(StudioSession.expires_at <= now))  # what nobody logged out of
    token = secrets.token_urlsafe(32)
    session.add(StudioSession(id=hash_secret(token), api_key_id=api_key.id, created_at=now, expires_at=now + lifetime))
    return token


def studio_session_project(session: Session, token: str) -> int | None:
    """The project of a live Studio session: not logged out, not expired, its key not deleted."""
    return session.scalar(
        select(ApiKey.project_id)
        .join(StudioSession, StudioSession.api_key_id == ApiKey.id)
        .where(StudioSession.id == hash_secret(token), StudioSession.expires_at > utcnow())
    )


def end_studio_session(session: Session, token: str) -> None:
    session.execute(delete(StudioSession).where(StudioSession.id == hash_secret(token)))


def principal_for_token(session: Session, token: str) -> Principal | None:
    org_id = session.scalar(select(OrgToken.organization_id).where(OrgToken.token_hash == hash_secret(token)))
    return Principal(organization_id=org_id) if org_id is not None else None


def visible_projects(session: Session, principal: Principal) -> list[Project]:
    stmt = select(Project).where(Project.organization_id == principal.organization_id).order_by(Project.id)
    if principal.project_id is not None:
        stmt = stmt.where(Project.id == principal.project_id)
    return list(session.scalars(stmt))


def get_visible_project(session: Session, principal: Principal, project_id: int) -> Project:
    """Another tenant's project looks exactly like one that does not exist."""
    project = session.get(Project, project_id)
    allowed = project is not None and project.organization_id == principal.organization_id
    if not allowed or (principal.project_id is not None and principal.project_id != project_id):
        raise NotFound(f"Project {project_id} not found")
    return project
