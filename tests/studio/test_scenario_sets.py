"""The Studio's scenario set pages, beside the collections: the sets, their fields and scenarios."""

from __future__ import annotations

from flask import Flask

from tests.conftest import ProjectHandle, make_project
from tests.studio.conftest import Browser


def test_scenario_sets_list_and_detail(studio_app: Flask, browser: Browser, project: ProjectHandle) -> None:
    body = project.post("scenario-sets", json={"name": "Support calls", "fields": ["tone"]}).get_json()
    scenarios = [
        {"goal": f"Cancel plan {i}", "expected_conversation_outcome": "Cancelled", "field_values": {"tone": "angry"}}
        for i in range(7)
    ]
    project.post(f"scenario-sets/{body['id']}/scenarios/batch", json={"scenarios": scenarios})
    listing = browser.get("/studio/scenario-sets").get_data(as_text=True)
    assert "Support calls" in listing and "<td>7</td>" in listing and "tone" in listing
    assert 'href="/studio/scenario-sets"' in browser.get("/studio/collections").get_data(as_text=True)
    first = browser.get(f"/studio/scenario-sets/{body['id']}").get_data(as_text=True)
    assert "Cancel plan 0" in first and "angry" in first and "Cancel plan 5" not in first  # 5 a page
    second = browser.get(f"/studio/scenario-sets/{body['id']}?page=2").get_data(as_text=True)
    assert "Cancel plan 6" in second and "7 in all" in second


def test_another_projects_scenario_set_is_404(studio_app: Flask, browser: Browser) -> None:
    other = make_project(studio_app, "Other")
    theirs = other.post("scenario-sets", json={"name": "Theirs"}).get_json()
    assert browser.get(f"/studio/scenario-sets/{theirs['id']}").status_code == 404
    assert "Theirs" not in browser.get("/studio/scenario-sets").get_data(as_text=True)
