"""STUDIO: how fast the Studio renders a 10,000-response experiment (issue #8; target: first page < 1 s).

Seeds a finished experiment with 10,000 responses, 3 criteria and their 30,000 ratings straight into the
bench stack's PostgreSQL (bulk inserts, no model calls), logs in to the Studio over HTTP with a project
key, then times the server's whole answer for the experiment page (summary, chart, errors and the first
table page) and for the responses table alone, filtered to one failing criterion: medians of 7 after a
warm-up. Run with `python -m bench --only STUDIO`, or alone with `python -m bench.studio`."""

from __future__ import annotations

import re
import statistics
import time

import requests

from bench.stack import BenchStack
from models.db import Database
from services.synthetic import seed_experiment

N_RESPONSES = 10_000
N_CRITERIA = 3
RUNS = 7


def _seed(stack: BenchStack, project_id: int) -> tuple[int, int]:
    database = Database(stack.env["DATABASE_URL"])
    try:
        with database.session() as session:
            seeded = seed_experiment(session, project_id, "Studio bench", N_RESPONSES, N_CRITERIA)
        return seeded.experiment_id, seeded.criterion_ids[-1]
    finally:
        database.dispose()


def _login(base_url: str, key: str) -> dict[str, str]:
    """The session cookie as a header: it is Secure, which `requests` keeps to HTTPS unlike browsers."""
    client = requests.Session()
    form = client.get(f"{base_url}/studio/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    cookie = {"Cookie": f"assay_studio={client.cookies['assay_studio']}"}
    res = requests.post(
        f"{base_url}/studio/login",
        data={"csrf_token": csrf, "api_key": key},
        headers=cookie,
        allow_redirects=False,
        timeout=30,
    )
    assert res.status_code == 303, res.text
    return {"Cookie": f"assay_studio={res.cookies['assay_studio']}"}


def _median_ms(url: str, headers: dict[str, str], expect: str) -> float:
    times = []
    for _ in range(RUNS + 1):
        started = time.perf_counter()
        res = requests.get(url, headers=headers, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        assert res.status_code == 200 and expect in res.text, res.text[:500]
    return statistics.median(times[1:])


def studio() -> dict[str, float]:
    stack = BenchStack({"ASSAY_SECRET_KEY": "bench-studio-secret-0123456789abcdef"}, workers=0).start()
    try:
        project_id, key = stack.project_key()
        started = time.perf_counter()
        experiment_id, criterion_id = _seed(stack, project_id)
        seed_seconds = time.perf_counter() - started
        headers = _login(stack.base_url, key)
        page = f"{stack.base_url}/studio/experiments/{experiment_id}"
        return {
            "detail_median_ms": _median_ms(page, headers, f"{N_RESPONSES} in all"),
            "table_median_ms": _median_ms(f"{page}/responses?criterion={criterion_id}", headers, " in all"),
            "responses": N_RESPONSES,
            "seed_seconds": seed_seconds,
        }
    finally:
        stack.stop()


if __name__ == "__main__":
    figures = studio()
    print(
        f"| STUDIO | experiment page {figures['detail_median_ms']:.0f} ms, responses table "
        f"{figures['table_median_ms']:.0f} ms (target < 1000 ms) | {N_RESPONSES} responses, {N_CRITERIA} criteria |"
    )
