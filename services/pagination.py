"""Constant-size pages, numbered from 1, with the total of the filtered set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class Paged(Generic[T]):
    items: list[T]
    count: int


def paginate(session: Session, stmt: Select[Any], page: int | None, page_size: int) -> Paged[Any]:
    """Run `stmt` (already ordered) for one page; `count` covers every page."""
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    offset = ((page or 1) - 1) * page_size
    items = list(session.scalars(stmt.limit(page_size).offset(offset)).unique()) if count else []
    return Paged(items=items, count=count)


def paginate_by_id(session: Session, stmt: Select[Any], page: int | None, page_size: int, model: Any) -> Paged[Any]:
    """`paginate` for large tables: the page's ids first, then only those rows with their eager loads, so
    the joins touch one page instead of every filtered row (which PostgreSQL joins before it sorts)."""
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    offset = ((page or 1) - 1) * page_size
    ids = list(session.scalars(stmt.with_only_columns(model.id).limit(page_size).offset(offset))) if count else []
    rows = {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids))).unique()} if ids else {}
    return Paged(items=[rows[i] for i in ids], count=count)
