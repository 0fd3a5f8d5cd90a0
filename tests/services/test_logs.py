"""Log lines are JSON objects carrying the ids bound where they were logged, and only those."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from services import logs


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict]]]:
    """JSON logging to a buffer; `read()` parses every line written so far."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("worker")
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs.clear()


def test_chunk_tasks_log_their_job_and_chunk_and_nothing_leaks_outside(read: Callable[[], list[dict]]) -> None:
    log = logging.getLogger("assay.test")

    async def chunk(chunk_id: int) -> None:
        logs.bind(chunk_id=chunk_id)
        log.warning("chunk line")

    async def job(job_id: str) -> None:
        logs.bind(job_id=job_id, project_id=7)
        await asyncio.gather(chunk(1), chunk(2))
        log.info("job line")

    async def main() -> None:
        await asyncio.create_task(job("a"))
        log.info("outside")

    asyncio.run(main())
    by_message = {}
    for line in read():
        by_message.setdefault(line["message"], []).append(line)
    assert sorted(line["chunk_id"] for line in by_message["chunk line"]) == [1, 2]
    assert {(line["job_id"], line["project_id"]) for line in by_message["chunk line"]} == {("a", 7)}
    assert "chunk_id" not in by_message["job line"][0] and by_message["job line"][0]["job_id"] == "a"
    assert not set(logs.FIELDS) & set(by_message["outside"][0])


def test_lines_are_json_with_level_logger_component_and_extra_fields(read: Callable[[], list[dict]]) -> None:
    logging.getLogger("assay.test").error("failed %s", "badly", extra={"status": 503})
    (line,) = read()
    assert line["message"] == "failed badly"
    assert (line["level"], line["logger"], line["component"], line["status"]) == ("ERROR", "assay.test", "worker", 503)
    assert "time" in line
