"""`GET experiments/compare` (Assay extension) on seeded experiments whose verdicts are set case by case:
a real gain is called, a 91% -> 95% change on 44 cases is not, and bad ids are 4xx naming the field."""

from __future__ import annotations

from flask import Flask

from tests.conftest import ProjectHandle
from tests.studio.conftest import seed, two_experiments


def test_compare_calls_a_real_gain_and_not_noise(app: Flask, project: ProjectHandle) -> None:
    a, b = two_experiments(app, project)
    res = project.get(f"experiments/compare?ids={a},{b}")
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    first, second = body["experiments"]
    assert (first["id"], second["id"]) == (a, b)
    small = first["by_criterion"]["Criterion 1?"]
    assert (small["successes"], small["n"]) == (40, 44)
    assert small["interval"]["low"] < 40 / 44 < small["interval"]["high"] <= 1
    (pair,) = body["pairs"]
    noise, gain = pair["criteria"]
    assert noise["criterion"] == "Criterion 1?" and (noise["b_only"], noise["a_only"]) == (2, 0)
    assert noise["p_value"] == 0.5  # exact McNemar on 2 discordant cases
    assert noise["verdict"] == "no detectable difference"
    assert noise["verdict_text"] == "no detectable difference at n=44"
    assert noise["interval"]["low"] <= 0 <= noise["interval"]["high"]
    assert gain["verdict"] == "B better" and gain["b_only"] == 20 and gain["p_adjusted"] < 0.001
    assert gain["p_adjusted"] >= gain["p_value"]  # Holm never lowers a p-value
    assert gain["effect"] == 20 / 44 and gain["interval"]["low"] > 0
    assert pair["overall"]["verdict"] == "B better" and pair["overall"]["n"] == 44


def test_compare_is_symmetric_in_its_verdict_and_deterministic(app: Flask, project: ProjectHandle) -> None:
    a, b = two_experiments(app, project)
    forward = project.get(f"experiments/compare?ids={a},{b}").get_json()
    backward = project.get(f"experiments/compare?ids={b},{a}").get_json()
    assert backward["pairs"][0]["criteria"][1]["verdict"] == "A better"
    assert project.get(f"experiments/compare?ids={a},{b}").get_json() == forward  # seeded bootstrap


def test_compare_takes_up_to_eight_experiments_against_the_first(app: Flask, project: ProjectHandle) -> None:
    a = seed(app, project.id, "E0", 10, n_criteria=1)
    ids = [a.experiment_id] + [seed(app, project.id, f"E{i}", 10, 1, a.entry_ids).experiment_id for i in range(1, 8)]
    body = project.get("experiments/compare", query_string={"ids": ",".join(map(str, ids))}).get_json()
    assert [e["id"] for e in body["experiments"]] == ids
    assert [(p["a_id"], p["b_id"]) for p in body["pairs"]] == [(ids[0], i) for i in ids[1:]]
    nine = seed(app, project.id, "E8", 10, 1, a.entry_ids).experiment_id
    res = project.get(f"experiments/compare?ids={','.join(map(str, [*ids, nine]))}")
    assert res.status_code == 422 and "query.ids" in res.get_json()["detail"]


def test_compare_refuses_bad_ids_naming_the_field(
    app: Flask, project: ProjectHandle, other_project: ProjectHandle
) -> None:
    a = seed(app, project.id, "Mine", 5, n_criteria=1).experiment_id
    theirs = seed(app, other_project.id, "Theirs", 5, n_criteria=1).experiment_id
    for query in (f"ids={a}", f"ids={a},{a}", "ids=1,x", "ids=0,1", "ids=1,99999999999", ""):
        res = project.get(f"experiments/compare?{query}")
        assert res.status_code == 422, query
        assert "ids" in res.get_json()["detail"], query
    res = project.get(f"experiments/compare?ids={a},{theirs}")
    assert res.status_code == 404 and str(theirs) in res.get_json()["detail"]


def test_compare_is_in_the_openapi_spec(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v0/openapi.json").get_json()
    path = next(p for p in spec["paths"] if p.endswith("/experiments/compare"))
    assert "ids" in str(spec["paths"][path]["get"]["parameters"])


def test_results_carry_wilson_intervals_the_sdk_ignores(app: Flask, project: ProjectHandle) -> None:
    from elluminate.schemas.experiments import ExperimentResults

    a, _ = two_experiments(app, project)
    experiment = project.get(f"experiments/{a}").get_json()
    results = experiment["results"]
    low, high = results["pass_rate_interval"]["low"], results["pass_rate_interval"]["high"]
    assert low < results["mean_all_ratings"]["yes"] == 60 / 88 < high
    by_id = results["pass_rate_interval_by_criterion_id"]
    assert set(by_id) == {str(c) for c in results["mean_rating_by_criterion_id"]}
    parsed = ExperimentResults.model_validate(results)  # the SDK's own model still reads them
    assert parsed.mean_all_ratings.yes == 60 / 88
