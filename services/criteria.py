"""Criterion sets and their yes/no criteria.

Criteria are immutable once written: editing one adds a new row at the same position and marks the old one
superseded, and removing a criterion that ratings point at only retires it, so finished experiments keep
the exact question each verdict answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.orm import Criterion, CriterionSet, Experiment, PromptTemplate, Rating
from models.schemas.criteria import (
    CreateCriteria,
    CriteriaQuery,
    CriterionIn,
    CriterionSetCreate,
    CriterionUpdate,
    NameQuery,
)
from services import evaluators, templates
from services.errors import Conflict, Invalid, owned
from services.pagination import Paged, paginate

# --- criterion sets ------------------------------------------------------------------------------------


def create_set(session: Session, project_id: int, body: CriterionSetCreate) -> CriterionSet:
    """A new, unlinked set with the given criteria (identical strings collapse into one)."""
    if _set_named(session, project_id, body.name) is not None:
        raise Conflict(f"Criterion set '{body.name}' already exists")
    criterion_set = CriterionSet(project_id=project_id, name=body.name)
    session.add(criterion_set)
    session.flush()
    add_to_set(session, criterion_set, body.criteria or [])
    return criterion_set


def _set_named(session: Session, project_id: int, name: str) -> int | None:
    return session.scalar(
        select(CriterionSet.id).where(CriterionSet.project_id == project_id, CriterionSet.name == name)
    )


def list_sets(session: Session, project_id: int, query: NameQuery, page_size: int) -> Paged[CriterionSet]:
    """Sets in creation order; `name` is exact."""
    stmt: Select[Any] = select(CriterionSet).where(CriterionSet.project_id == project_id)
    if query.name is not None:
        stmt = stmt.where(CriterionSet.name == query.name)
    return paginate(session, stmt.order_by(CriterionSet.id), query.page, page_size)


def get_set(session: Session, project_id: int, set_id: int) -> CriterionSet:
    return owned(session, CriterionSet, project_id, set_id, "Criterion set")


def delete_set(session: Session, project_id: int, set_id: int) -> None:
    """Delete a set with its criteria and unlink its templates; refused while an experiment uses it."""
    criterion_set = get_set(session, project_id, set_id)
    _refuse_if_used(session, Experiment.criterion_set_id, set_id, f"Criterion set {set_id}")
    session.execute(
        update(PromptTemplate).where(PromptTemplate.criterion_set_id == set_id).values(criterion_set_id=None)
    )
    session.execute(delete(Criterion).where(Criterion.criterion_set_id == set_id))
    session.delete(criterion_set)
    session.flush()


def _refuse_if_used(session: Session, column: Any, ident: int, what: str) -> None:
    used_by = select(Experiment.name).where(column == ident).order_by(Experiment.id)
    names = [repr(n) for n in session.scalars(used_by)]
    if names:
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise Conflict(f"{what} is used by experiment(s) {listed}; delete them first")


def link_template(session: Session, project_id: int, set_id: int, template_id: int) -> CriterionSet:
    """Make this set the one the template's experiments and ratings fall back to."""
    criterion_set = get_set(session, project_id, set_id)
    templates.get(session, project_id, template_id).criterion_set_id = set_id
    return _refreshed(session, criterion_set)


def unlink_template(session: Session, project_id: int, set_id: int, template_id: int) -> None:
    """Remove the link if the template is linked to this set; otherwise nothing changes (idempotent)."""
    get_set(session, project_id, set_id)
    template = templates.get(session, project_id, template_id)
    if template.criterion_set_id == set_id:
        template.criterion_set_id = None
        session.flush()


def _refreshed(session: Session, criterion_set: CriterionSet) -> CriterionSet:
    # `criteria` and `prompt_templates` are view-only, so they do not follow writes made in this session.
    session.flush()
    session.expire(criterion_set, ["criteria", "prompt_templates"])
    return criterion_set


# --- POST criteria: its four modes ---------------------------------------------------------------------


def create_criteria(session: Session, project_id: int, body: CreateCriteria) -> list[Criterion]:
    """Add to (or, with `delete_existing`, replace) a set's or a template's criteria (generation: see
    `services.generation`)."""
    if body.criterion_set_id is not None:
        criterion_set = get_set(session, project_id, body.criterion_set_id)
        return add_to_set(session, criterion_set, body.criteria or [], replace=body.delete_existing)
    assert body.prompt_template_id is not None  # CreateCriteria guarantees exactly one target
    template = templates.get(session, project_id, body.prompt_template_id)
    return add_to_template(session, template, body.criteria or [], replace=body.delete_existing)


def add_to_set(
    session: Session, criterion_set: CriterionSet, items: Sequence[CriterionIn], replace: bool = False
) -> list[Criterion]:
    """Append criteria in input order; one the set already has (same string, evaluator and parameters) is
    reused, not duplicated. Evaluator criteria are checked first: a bad one is a 422 and nothing is written."""
    kinds = [_evaluator_of(item, f"body.criteria[{i}]") for i, item in enumerate(items)]
    if replace:
        retire_all(session, criterion_set.id)
    existing = {
        _identity(c.criterion_str, c.evaluator, c.evaluator_params): c
        for c in current_criteria(session, criterion_set.id)
    }
    position = _next_position(session, criterion_set.id)
    result = []
    for item, (evaluator, params) in zip(items, kinds, strict=True):
        key = _identity(item.criterion_str, evaluator, params)
        criterion = existing.get(key)
        if criterion is None:
            criterion = Criterion(
                project_id=criterion_set.project_id,
                criterion_set_id=criterion_set.id,
                criterion_str=item.criterion_str,
                label=item.label,
                position=position,
                evaluator=evaluator,
                evaluator_params=params,
            )
            session.add(criterion)
            existing[key] = criterion
            position += 1
        result.append(criterion)
    _refreshed(session, criterion_set)
    return result


def _evaluator_of(item: CriterionIn, where: str) -> tuple[str | None, dict[str, Any] | None]:
    """The criterion's evaluator and its checked parameters, or (None, None) for the LLM judge."""
    if item.evaluator is None:
        if item.params is not None:
            raise Invalid(f"{where}.params: only a criterion with an evaluator takes params")
        return None, None
    try:
        return item.evaluator, evaluators.check_params(item.evaluator, item.params)
    except evaluators.InvalidEvaluator as exc:
        raise Invalid("; ".join(f"{where}.{field}: {message}" for field, message in exc.problems)) from None


def _identity(text: str, evaluator: str | None, params: dict[str, Any] | None) -> tuple[str, str | None, str]:
    return text, evaluator, json.dumps(params, sort_keys=True)


def add_to_template(
    session: Session, template: PromptTemplate, items: Sequence[CriterionIn], replace: bool = False
) -> list[Criterion]:
    """Add to the template's linked set, creating and linking one named like the template if it has none."""
    if template.criterion_set_id is None and not items:
        return []
    return add_to_set(session, template_set(session, template), items, replace=replace)


def template_set(session: Session, template: PromptTemplate) -> CriterionSet:
    """The template's linked set; a missing one is created and linked to all unlinked versions of the name."""
    if template.criterion_set_id is not None:
        return session.get_one(CriterionSet, template.criterion_set_id)
    try:
        with session.begin_nested():
            criterion_set = CriterionSet(project_id=template.project_id, name=_free_set_name(session, template))
            session.add(criterion_set)
    except IntegrityError:
        # A concurrent request created and linked the template's set first: use it.
        session.refresh(template)
        if template.criterion_set_id is None:
            raise
        return session.get_one(CriterionSet, template.criterion_set_id)
    session.execute(
        update(PromptTemplate)
        .where(
            PromptTemplate.project_id == template.project_id,
            PromptTemplate.name == template.name,
            PromptTemplate.criterion_set_id.is_(None),
        )
        .values(criterion_set_id=criterion_set.id)
    )
    return criterion_set


def _free_set_name(session: Session, template: PromptTemplate) -> str:
    """The template's name, or `<name> (2)`, `(3)`, ... when an unrelated set already holds it."""
    name, n = template.name, 1
    while _set_named(session, template.project_id, name) is not None:
        n += 1
        suffix = f" ({n})"
        name = template.name[: 500 - len(suffix)] + suffix
    return name


# --- single criteria -----------------------------------------------------------------------------------


def current_criteria(session: Session, set_id: int) -> list[Criterion]:
    """The set's live (non-superseded) criteria in order."""
    return list(session.scalars(_current_stmt(set_id)))


def _current_stmt(set_id: int) -> Select[Any]:
    return (
        select(Criterion)
        .where(Criterion.criterion_set_id == set_id, Criterion.superseded.is_(False))
        .order_by(Criterion.position, Criterion.id)
    )


def _next_position(session: Session, set_id: int) -> int:
    highest = session.scalar(select(func.max(Criterion.position)).where(Criterion.criterion_set_id == set_id))
    return 0 if highest is None else highest + 1


def retire_all(session: Session, set_id: int) -> None:
    """Empty a set: delete criteria nobody rated, mark rated ones superseded so their ratings survive."""
    rated = select(Rating.criterion_id)
    in_set = Criterion.criterion_set_id == set_id
    session.execute(update(Criterion).where(in_set, Criterion.id.in_(rated)).values(superseded=True))
    session.execute(delete(Criterion).where(in_set, Criterion.id.not_in(rated)))


def list_criteria(session: Session, project_id: int, query: CriteriaQuery, page_size: int) -> Paged[Criterion]:
    """A set's live criteria in order, chosen by the template's link and/or the set id."""
    set_ids = []
    if query.prompt_template_id is not None:
        set_ids.append(templates.get(session, project_id, query.prompt_template_id).criterion_set_id)
    if query.criterion_set_id is not None:
        set_ids.append(get_set(session, project_id, query.criterion_set_id).id)
    if None in set_ids or len(set(set_ids)) != 1:
        return Paged(items=[], count=0)
    return paginate(session, _current_stmt(set_ids[0]), query.page, page_size)


def get_criterion(session: Session, project_id: int, criterion_id: int) -> Criterion:
    """Any version of a criterion, superseded ones included (ratings refer to them)."""
    return owned(session, Criterion, project_id, criterion_id, "Criterion")


def update_criterion(session: Session, project_id: int, criterion_id: int, body: CriterionUpdate) -> Criterion:
    """Write the edit as a new version at the same position; the old row stays for its ratings."""
    old = get_criterion(session, project_id, criterion_id)
    if old.superseded:
        raise Conflict(f"Criterion {criterion_id} has been replaced by a newer version; edit that one")
    text = body.criterion_str if body.criterion_str is not None else old.criterion_str
    label = body.label if "label" in body.model_fields_set else old.label
    if (text, label) == (old.criterion_str, old.label):
        return old
    old.superseded = True
    new = Criterion(
        project_id=project_id,
        criterion_set_id=old.criterion_set_id,
        criterion_str=text,
        label=label,
        position=old.position,
        evaluator=old.evaluator,
        evaluator_params=old.evaluator_params,
    )
    session.add(new)
    session.flush()
    return new


def delete_criterion(session: Session, project_id: int, criterion_id: int) -> None:
    """Remove a criterion from its set; if ratings point at it, it is retired instead of erased."""
    criterion = get_criterion(session, project_id, criterion_id)
    if session.scalar(select(Rating.id).where(Rating.criterion_id == criterion_id).limit(1)) is not None:
        criterion.superseded = True
    else:
        session.delete(criterion)
    session.flush()
