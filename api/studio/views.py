"""Studio pages and actions: thin views that parse a form, call one service, render a template."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from api import sse, throttle
from api.downloads import export_response
from api.extensions import commit, db_session, settings, start_job
from api.routing import parse_query
from api.studio import session as studio_session
from api.studio.forms import (
    CompareForm,
    ExperimentListForm,
    LaunchForm,
    LoginForm,
    PageForm,
    ProgressForm,
    ResponsesForm,
    ReviewForm,
    UploadForm,
    parse_form,
)
from models.schemas.collections import CollectionQuery
from models.schemas.scenario_sets import ScenarioSetQuery
from services import collections, export, reviews, runs, scenario_sets, studio
from services.errors import Invalid

bp = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates", static_folder="static")
STREAM_INTERVAL = 0.5
FRAGMENT_HEADER = "X-Studio-Fragment"


def project_id() -> int:
    return studio_session.project_id()


def page_size() -> int:
    return settings().page_size


def render(template: str, fragment: str | None = None, **context: Any) -> str:
    """The whole page, or only its fragment when the Studio's script asks for it (drawer, table)."""
    if fragment is not None and request.headers.get(FRAGMENT_HEADER) == "1":
        return render_template(f"studio/{fragment}", **context)
    return render_template(f"studio/{template}", **context)


# ---- login


@bp.get("/")
def index() -> BaseResponse:
    return redirect(url_for("studio.experiments_list"))


@bp.get("/login")
def login_form() -> str:
    return render_template("studio/login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login() -> BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    try:
        form = LoginForm.model_validate(request.form.to_dict())
    except ValidationError:
        return render_template("studio/login.html", error="Enter a project API key.", next=""), 400
    try:
        throttle.check_auth_failures()
    except throttle.Throttled as exc:
        page = render_template("studio/login.html", error=exc.detail, next=form.next)
        return page, 429, {"Retry-After": str(exc.retry_after)}
    if not studio_session.log_in(form.api_key):
        throttle.record_auth_failure()
        return render_template("studio/login.html", error="That API key is not valid.", next=form.next), 401
    commit()
    return redirect(form.safe_next() or url_for("studio.experiments_list"), 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    studio_session.log_out()
    commit()
    flash("You are logged out.", "info")
    return redirect(url_for("studio.login_form"), 303)


# ---- experiments


@bp.get("/experiments")
def experiments_list() -> str:
    form = parse_query(ExperimentListForm)
    page = studio.list_experiments(db_session(), project_id(), form.filters(), page_size())
    return render("experiments.html", page=page, form=form, page_size=page_size())


@bp.get("/experiments/progress")
def experiments_progress() -> Response:
    """SSE for the list's live column: the newest job of each listed experiment, until all have ended."""
    ids, owner = parse_query(ProgressForm).ids, project_id()

    def poll(session: Session) -> dict[str, Any]:
        return studio.progress_of(session, owner, ids)

    db_session().close()
    return sse.stream(poll, STREAM_INTERVAL)


def _experiment(experiment_id: int, template: str, fragment: str | None = None) -> str:
    form = parse_query(ResponsesForm)
    page = studio.experiment_page(db_session(), project_id(), experiment_id, form.filters(), page_size())
    return render(template, fragment, summary=page.summary, responses=page.responses, form=form, page_size=page_size())


@bp.get("/experiments/new")
def launch_form() -> str:
    return render("new_experiment.html", choices=studio.launch_choices(db_session(), project_id()))


@bp.post("/experiments/new")
def launch() -> BaseResponse:
    """Create an experiment from the form and start its run."""
    form = parse_form(LaunchForm)
    job = studio.launch(db_session(), settings(), project_id(), form.launch())
    start_job(job)
    commit()
    flash("The experiment was created and its run started.", "info")
    return redirect(url_for("studio.experiment_detail", experiment_id=job.experiment_id), 303)


@bp.get("/experiments/<int:experiment_id>")
def experiment_detail(experiment_id: int) -> str:
    return _experiment(experiment_id, "experiment.html")


@bp.get("/experiments/<int:experiment_id>/live")
def experiment_live(experiment_id: int) -> str | BaseResponse:
    """Actions, totals, charts and agreement alone: the script swaps them in as the run's stream moves."""
    if request.headers.get(FRAGMENT_HEADER) != "1":
        return redirect(url_for("studio.experiment_detail", experiment_id=experiment_id))
    return render_template("studio/_live.html", summary=studio.summary(db_session(), project_id(), experiment_id))


@bp.get("/experiments/<int:experiment_id>/responses")
def responses_table(experiment_id: int) -> str:
    """The responses table alone: the script swaps it in when paging or filtering."""
    return _experiment(experiment_id, "responses.html", "_responses.html")


@bp.get("/experiments/<int:experiment_id>/responses/<int:response_id>")
def response_detail(experiment_id: int, response_id: int) -> str:
    drawer = studio.response_drawer(db_session(), project_id(), experiment_id, response_id)
    return render(
        "response.html", "_response.html", response=drawer.response, reviews=drawer.reviews, experiment_id=experiment_id
    )


@bp.post("/experiments/<int:experiment_id>/ratings/<int:rating_id>/review")
def review(experiment_id: int, rating_id: int) -> BaseResponse:
    """Confirm or override one verdict with a note; the judge's verdict stays as it was."""
    form = parse_form(ReviewForm)
    reviews.review(db_session(), project_id(), rating_id, form.verdict, form.note, form.reviewer, experiment_id)
    commit()
    flash("Your review was saved beside the judge's verdict.", "info")
    return redirect(url_for("studio.experiment_detail", experiment_id=experiment_id) + "#agreement", 303)


@bp.get("/experiments/<int:experiment_id>/stream")
def experiment_stream(experiment_id: int) -> Response:
    """SSE: the experiment's newest job, as the REST stream reports it, authorised by the session."""
    job_id = studio.job_to_follow(db_session(), project_id(), experiment_id)
    db_session().close()
    return sse.experiment_stream(job_id, STREAM_INTERVAL)


@bp.post("/experiments/<int:experiment_id>/cancel")
def cancel(experiment_id: int) -> BaseResponse:
    runs.cancel_experiment(db_session(), project_id(), experiment_id)
    commit()
    flash("The run was cancelled; finished responses are kept.", "info")
    return redirect(url_for("studio.experiment_detail", experiment_id=experiment_id), 303)


@bp.post("/experiments/<int:experiment_id>/retry")
def retry(experiment_id: int) -> BaseResponse:
    _, job = runs.retry_experiment(db_session(), settings(), project_id(), experiment_id)
    task_id = start_job(job)
    commit()
    done = "Retrying: failed responses are regenerated, failed and missing ratings rated."
    flash(done if task_id else "Nothing failed or missing: nothing to retry.", "info")
    return redirect(url_for("studio.experiment_detail", experiment_id=experiment_id), 303)


@bp.get("/experiments/<int:experiment_id>/export.<any(csv, jsonl):fmt>")
def download(experiment_id: int, fmt: export.ExportFormat) -> Response:
    return export_response(project_id(), experiment_id, fmt)


@bp.get("/compare")
def compare() -> str:
    form = parse_query(CompareForm)
    page = studio.compare_page(db_session(), project_id(), form.choice())
    return render("compare.html", form=form, page=page, result=page.result, choices=page.choices)


# ---- templates, collections, criterion sets


@bp.get("/templates")
def templates_list() -> str:
    return render("templates.html", groups=studio.templates_by_name(db_session(), project_id()))


@bp.get("/collections")
def collections_list() -> str:
    form = parse_query(CollectionQuery)
    page = collections.list_(db_session(), project_id(), form, page_size())
    return render("collections.html", page=page, form=form, page_size=page_size())


@bp.post("/collections/upload")
def upload_collection() -> BaseResponse:
    """A new collection from an uploaded CSV or JSONL file."""
    form = parse_form(UploadForm)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Invalid("file: choose a CSV or JSONL file to upload")
    collection_id = studio.upload_collection(db_session(), project_id(), form.name, upload.read(), upload.filename)
    commit()
    flash("The collection was uploaded.", "info")
    return redirect(url_for("studio.collection_detail", collection_id=collection_id), 303)


@bp.get("/collections/<int:collection_id>")
def collection_detail(collection_id: int) -> str:
    form = parse_query(PageForm)
    page = studio.collection_page(db_session(), project_id(), collection_id, form.page, page_size())
    return render("collection.html", collection=page.collection, page=page.entries, form=form, page_size=page_size())


@bp.get("/criterion-sets")
def criterion_sets() -> str:
    form = parse_query(PageForm)
    page = studio.criterion_sets(db_session(), project_id(), form.page, page_size())
    return render("criterion_sets.html", page=page, form=form, page_size=page_size())


def wants_page() -> bool:
    """A browser navigation (not the script's fetch of a fragment, nor an EventSource)."""
    # Not `in request.accept_mimetypes`: a browser's `*/*` would match it.
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    return request.headers.get(FRAGMENT_HEADER) != "1" and not streaming


def guard() -> BaseResponse | tuple[str, int] | None:
    """Before every Studio request: a signing key, the CSRF token on unsafe methods, a live session."""
    if request.endpoint == "studio.static":
        return None
    problem = studio_session.secret_problem(settings())
    if problem:
        return render_template("studio/login.html", problem=problem, next=""), 503
    studio_session.check_csrf()
    if request.endpoint in {"studio.login_form", "studio.login", "studio.logout"}:
        return None
    if studio_session.load_project() is None:
        if wants_page() and request.method == "GET":
            return redirect(url_for("studio.login_form", next=request.full_path.rstrip("?")))
        abort(401, "Your Studio session ended; log in again.")
    return None


bp.before_request(guard)


# ---- scenario sets (beside collections)


@bp.get("/scenario-sets")
def scenario_sets_list() -> str:
    form = parse_query(ScenarioSetQuery)
    page = scenario_sets.list_(db_session(), project_id(), form, page_size())
    return render("scenario_sets.html", page=page, form=form, page_size=page_size())


@bp.get("/scenario-sets/<int:set_id>")
def scenario_set_detail(set_id: int) -> str:
    form = parse_query(PageForm)
    session = db_session()
    scenario_set = scenario_sets.get(session, project_id(), set_id)
    page = scenario_sets.list_scenarios(session, project_id(), set_id, form.page, page_size())
    return render("scenario_set.html", scenario_set=scenario_set, page=page, form=form, page_size=page_size())
