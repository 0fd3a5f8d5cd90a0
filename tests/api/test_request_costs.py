"""What a request costs the database: submitting work is on the path to STARTED (bench P5)."""

from __future__ import annotations

from flask import Flask

from tests.conftest import ProjectHandle, recorded_statements
from tests.services.conftest import experiment_refs


def _rows_of(statements: list[str], table: str) -> list[str]:
    """The statements that load rows of `table` (not those that only count or join it)."""
    return [s for s in statements if s.startswith(f"SELECT {table}.id")]


def test_a_new_experiment_reads_what_it_refers_to_once(app: Flask, project: ProjectHandle) -> None:
    ids = experiment_refs(project, 1)
    engine = app.extensions["assay_db"].engine
    with recorded_statements(engine) as statements:
        res = project.post("experiments", json={"name": "E", **ids})
    assert res.status_code == 201, res.get_data(as_text=True)
    body = res.get_json()
    # The answer carries the template, the collection and the criterion set it was validated against.
    assert (body["prompt_template"]["id"], body["collection"]["id"]) == (
        ids["prompt_template_id"],
        ids["collection_id"],
    )
    assert [c["criterion_str"] for c in body["criterion_set"]["criteria"]] == ["Ok?"]
    assert body["results"]["num_rated_responses"] == 0 and body["results"]["mean_all_ratings"] == {
        "yes": 0.0,
        "no": 0.0,
    }
    # Authenticated once (one key lookup), the collection and the criterion set read once (templates are
    # read again as the set's linked ones), and no rating aggregates for an experiment without responses.
    assert len([s for s in statements if "WHERE api_keys.key_hash" in s]) == 1
    for table in ("collections", "criterion_sets"):
        assert len(_rows_of(statements, table)) == 1, (table, _rows_of(statements, table))
    assert [s for s in statements if "FROM ratings" in s] == []
