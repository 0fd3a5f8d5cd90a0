"""Downloads that the REST API and the Studio both serve: an experiment's export, streamed."""

from __future__ import annotations

from flask import Response

from api.extensions import database, db_session
from services import export


def export_response(project_id: int, experiment_id: int, fmt: export.ExportFormat) -> Response:
    """Plan the export in the request's session, then stream it from short sessions of its own."""
    session = db_session()
    plan = export.plan(session, project_id, experiment_id)
    session.close()  # nothing is held open while a slow client downloads
    headers = {"Content-Disposition": f'attachment; filename="{plan.filename(fmt)}"', "Cache-Control": "no-store"}
    return Response(export.lines(database(), plan, fmt), mimetype=export.MEDIA_TYPES[fmt], headers=headers)
