"""Persistence (SQLAlchemy tables, migrations) and the wire schemas (pydantic) of Assay."""
