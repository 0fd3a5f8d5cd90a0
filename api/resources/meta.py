"""The version check and the project list: what an SDK client calls while it is being constructed."""

from __future__ import annotations

from flask import Blueprint

from api.auth import current_principal
from api.extensions import db_session
from api.routing import endpoint
from models.schemas.common import Page
from models.schemas.projects import ProjectCreate, ProjectOut, VersionCheck, VersionCheckOut
from services import auth as auth_service
from services.errors import ServiceError
from services.pagination import Paged

bp = Blueprint("meta", __name__, url_prefix="/api/v0")

SUPPORTED_SDK_VERSION = "1.5.2"


class Forbidden(ServiceError):
    status = 403


@endpoint(bp, "/version/compatible", "POST", body=VersionCheck, response=VersionCheckOut)
def version_compatible(body: VersionCheck) -> dict:
    """Tell an SDK whether it can talk to this server (every 0.7.x and 1.x SDK can)."""
    return {
        "is_compatible": True,
        "required_sdk_version": SUPPORTED_SDK_VERSION,
        "current_sdk_version": body.current_sdk_version,
    }


@endpoint(bp, "/projects", response=Page[ProjectOut])
def list_projects() -> Paged:
    """The projects the caller may use: the key's own project, or every project of the token's organization."""
    projects = auth_service.visible_projects(db_session(), current_principal())
    return Paged(items=projects, count=len(projects))


@endpoint(bp, "/projects/<int:project_id>", response=ProjectOut)
def get_project(project_id: int) -> object:
    """One project the caller may use."""
    return auth_service.get_visible_project(db_session(), current_principal(), project_id)


@endpoint(bp, "/projects", "POST", body=ProjectCreate, response=ProjectOut, status=201, errors=(403,))
def create_project(body: ProjectCreate) -> object:
    """Create a project in the token's organization (project keys cannot create projects)."""
    principal = current_principal()
    if principal.project_id is not None:
        raise Forbidden("Creating projects needs an organization token, not a project API key")
    if body.organization_id not in (None, principal.organization_id):
        raise Forbidden("The token does not belong to that organization")
    return auth_service.create_project(db_session(), body.name, body.description, principal.organization_id)
