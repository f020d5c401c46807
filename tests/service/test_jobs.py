"""Jobs: the pure decisions (statuses, retries, pickup timers, history) exhaustively, and the
/v1/jobs API and the worker's queue in-process against a real Redis.

The worker processes themselves are tested in test_jobs_workers.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from genesis.cli import main
from genesis.service.app import create_app
from genesis.service.jobs.model import (
    CANCELLED_MARKER,
    AttemptOutcome,
    JobStatus,
    after_error,
    finish_attempt,
    is_retryable,
    pickup_timers,
    public_status,
    seconds,
    settled_history,
    start_attempt,
)
from genesis.service.keys import key_line, new_key
from genesis.service.settings import OFFLINE_MODEL, Settings
from harness.redis import RedisServer

BODY = {"model": OFFLINE_MODEL, "messages": [{"role": "user", "content": "hi"}]}


# -- pure decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("saq_status", "error", "expected"),
    [
        ("new", None, JobStatus.QUEUED),
        ("queued", "swept", JobStatus.QUEUED),
        ("active", None, JobStatus.RUNNING),
        ("complete", None, JobStatus.SUCCEEDED),
        ("failed", "Traceback", JobStatus.FAILED),
        ("aborting", CANCELLED_MARKER, JobStatus.CANCELLED),
        ("aborted", CANCELLED_MARKER, JobStatus.CANCELLED),
        ("aborting", "swept", JobStatus.QUEUED),
        ("aborted", "swept", JobStatus.FAILED),
    ],
)
def test_public_status(saq_status: str, error: str | None, expected: JobStatus) -> None:
    assert public_status(saq_status, error) == expected


def test_public_status_refuses_unknown_states() -> None:
    with pytest.raises(ValueError, match="unknown saq job status"):
        public_status("lost", None)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_upstream_trouble_is_retried_while_attempts_last(status: int) -> None:
    assert is_retryable(status)
    assert after_error(status, 1, 3).retry
    assert after_error(status, 2, 3).outcome == AttemptOutcome.RETRIED
    last = after_error(status, 3, 3)
    assert not last.retry
    assert last.outcome == AttemptOutcome.FAILED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 500])
def test_bad_requests_and_bugs_are_final(status: int) -> None:
    assert not is_retryable(status)
    assert after_error(status, 1, 5) == after_error(status, 1, 1)
    assert not after_error(status, 1, 5).retry


@pytest.mark.parametrize("pickup", [10, 12, 60, 61, 3600])
def test_pickup_timers_keep_the_promised_bound(pickup: int) -> None:
    timers = pickup_timers(pickup)
    assert timers.heartbeat_seconds >= 2
    assert timers.worst_case_seconds <= pickup
    assert timers.touch_every_seconds < timers.heartbeat_seconds


def test_pickup_timers_need_room_for_the_sweep() -> None:
    with pytest.raises(ValueError, match="at least"):
        pickup_timers(6)


def test_history_records_attempts_and_marks_the_silent_one_abandoned() -> None:
    history = start_attempt([], 1, "host-1", 100)
    assert history[0]["outcome"] == "running"
    history = start_attempt(history, 2, "host-2", 130)
    assert [entry["outcome"] for entry in history] == ["abandoned", "running"]
    history = finish_attempt(history, AttemptOutcome.RETRIED, 131, {"message": "m", "type": "t"})
    assert history[-1] == {
        "attempt": 2,
        "worker": "host-2",
        "started_at": 130,
        "finished_at": 131,
        "outcome": "retried",
        "error": {"message": "m", "type": "t"},
    }
    with pytest.raises(ValueError, match="no attempt"):
        finish_attempt([], AttemptOutcome.FAILED, 1)


@pytest.mark.parametrize(
    ("status", "last_outcome", "finished"),
    [
        (JobStatus.RUNNING, AttemptOutcome.RUNNING, None),
        (JobStatus.QUEUED, AttemptOutcome.ABANDONED, None),
        (JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, 9),
        (JobStatus.CANCELLED, AttemptOutcome.CANCELLED, 9),
        (JobStatus.FAILED, AttemptOutcome.ABANDONED, 9),
    ],
)
def test_settled_history_reads_what_a_worker_could_not_write(
    status: JobStatus, last_outcome: AttemptOutcome, finished: int | None
) -> None:
    history = start_attempt(start_attempt([], 1, "a", 1), 2, "b", 5)
    settled = settled_history(history, status, 9 if finished else None)
    assert settled[0].outcome == AttemptOutcome.ABANDONED
    assert settled[1].outcome == last_outcome
    assert settled[1].finished_at == finished


def test_seconds() -> None:
    assert seconds(0) is None
    assert seconds(None) is None
    assert seconds(1_700_000_000_999) == 1_700_000_000


# -- the API, in-process, on a real Redis -------------------------------------------------------


def _settings(redis: RedisServer | None, **extra: Any) -> Settings:
    return Settings(
        redis_url=redis.url if redis else None, metrics_port=0, job_pickup_seconds=12, **extra
    )


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Client]:
    app = create_app(_settings(redis_server))
    async with app.test_app():
        yield app.test_client()


@pytest.mark.integration
async def test_post_queues_a_job_that_get_and_list_show(client: Client) -> None:
    response = await client.post("/v1/jobs", json=BODY)
    assert response.status_code == 202
    job = await response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["object"] == "chat.completion.job"
    assert job["attempts"] == 0
    assert job["max_attempts"] == 4
    assert job["result"] is None

    shown = await (await client.get(f"/v1/jobs/{job['id']}")).get_json()
    assert shown["id"] == job["id"]
    listed = await (await client.get("/v1/jobs?limit=1")).get_json()
    assert [entry["id"] for entry in listed["data"]] == [job["id"]]
    assert listed["has_more"] is False


@pytest.mark.integration
async def test_cancel_a_queued_job(client: Client) -> None:
    job = await (await client.post("/v1/jobs", json=BODY)).get_json()
    cancelled = await (await client.delete(f"/v1/jobs/{job['id']}")).get_json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["finished_at"] is not None
    again = await client.delete(f"/v1/jobs/{job['id']}")
    assert (await again.get_json())["status"] == "cancelled"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({**BODY, "stream": True}, 400, "stream"),
        ({**BODY, "model": "nope"}, 404, "model"),
        ({"model": OFFLINE_MODEL}, 400, "messages"),
    ],
)
async def test_refusals_in_openai_shape(
    client: Client, body: dict[str, Any], status: int, param: str
) -> None:
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == status
    error = (await response.get_json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param


@pytest.mark.integration
async def test_unknown_jobs_and_bad_limits(client: Client) -> None:
    response = await client.get("/v1/jobs/job_missing")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "job_not_found"
    assert (await client.delete("/v1/jobs/job_missing")).status_code == 404
    bad = await client.get("/v1/jobs?limit=0")
    assert bad.status_code == 400
    assert (await bad.get_json())["error"]["param"] == "limit"


@pytest.mark.integration
async def test_jobs_belong_to_the_key_that_made_them(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    alice, bob = new_key(), new_key()
    keys = tmp_path / "keys"
    keys.write_text(f"{key_line('alice', alice)}\n{key_line('bob', bob)}\n")
    app = create_app(_settings(redis_server, api_keys_file=keys))
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    async with app.test_app():
        client = app.test_client()
        job = await (await client.post("/v1/jobs", json=BODY, headers=as_alice)).get_json()
        path = f"/v1/jobs/{job['id']}"

        assert (await client.get(path, headers=as_bob)).status_code == 404
        assert (await client.delete(path, headers=as_bob)).status_code == 404
        bobs = await (await client.get("/v1/jobs", headers=as_bob)).get_json()
        assert bobs["data"] == []
        assert (await client.get(path)).status_code == 401

        assert (await client.get(path, headers=as_alice)).status_code == 200
        alices = await (await client.get("/v1/jobs", headers=as_alice)).get_json()
        assert [entry["id"] for entry in alices["data"]] == [job["id"]]


async def test_without_redis_jobs_answer_503() -> None:
    app = create_app(_settings(None))
    async with app.test_app():
        response = await app.test_client().post("/v1/jobs", json=BODY)
    assert response.status_code == 503
    error = (await response.get_json())["error"]
    assert error["code"] == "jobs_unavailable"
    assert "GENESIS_REDIS_URL" in error["message"]


@pytest.mark.integration
async def test_an_unreachable_redis_is_a_503_not_a_500(redis_server: RedisServer) -> None:
    app = create_app(_settings(redis_server))
    async with app.test_app():
        client = app.test_client()
        redis_server.stop()
        response = await client.get("/v1/jobs")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


async def test_the_openapi_document_describes_the_jobs_routes() -> None:
    app = create_app(_settings(None))
    async with app.test_app():
        document = await (await app.test_client().get("/openapi.json")).get_json()
    paths = document["paths"]
    assert set(paths["/v1/jobs"]) == {"get", "post"}
    assert set(paths["/v1/jobs/{job_id}"]) == {"get", "delete"}
    assert "202" in json.dumps(paths["/v1/jobs"]["post"]["responses"])


# -- the worker's queue -------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_stopping_worker_puts_a_job_it_just_took_back(redis_server: RedisServer) -> None:
    from genesis.service.jobs.queue import JobQueue, WorkerQueue, redis_client

    settings = _settings(redis_server)
    jobs = JobQueue(settings)
    queue = WorkerQueue(redis_client(settings, blocking=True), "chat")
    try:
        taking = asyncio.create_task(queue.dequeue())
        await asyncio.sleep(0.3)
        queue.closing = True
        job = await jobs.enqueue("anonymous", BODY, OFFLINE_MODEL)
        assert await taking is None
        depth, age = await queue.waiting()
        assert depth == 1
        assert age >= 0
        assert await queue.redis.lrange(queue.namespace("active"), 0, -1) == []
        assert await queue.dequeue() is None
        queue.closing = False
        taken = await queue.dequeue()
        assert taken is not None
        assert taken.key == job.id
    finally:
        await jobs.aclose()
        await queue.disconnect()


@pytest.mark.integration
async def test_the_sweep_spares_a_job_just_taken_and_takes_a_silent_one(
    redis_server: RedisServer,
) -> None:
    from saq import Status

    from genesis.service.jobs.queue import JobQueue, WorkerQueue, redis_client

    # No backoff: a swept job is queued again at once.
    settings = _settings(redis_server, job_retry_base_seconds=0)
    jobs = JobQueue(settings)
    queue = WorkerQueue(redis_client(settings, blocking=True), "chat")
    active = queue.namespace("active")
    try:
        await queue.redis.delete(queue.namespace("sweep"))
        job = await jobs.enqueue("anonymous", BODY, OFFLINE_MODEL)
        # Taken, but not yet marked active: as a worker leaves it for a moment.
        await queue.redis.lmove(queue.namespace("queued"), active, "LEFT", "RIGHT")
        assert await queue.sweep(lock=1) == []
        assert await queue.sweep(lock=1) == []  # the lock: another sweep ran just now
        await queue.redis.delete(queue.namespace("sweep"))
        # Still unmarked at the next sweep: its worker died in between.
        swept = await queue.sweep(lock=1, abort=0.1)
        assert swept == [f"saq:job:chat:{job.id}"]
        stored = await queue.job(job.id)
        assert stored is not None
        assert stored.status == Status.QUEUED

        # A job marked active whose heartbeat stopped goes at the first sweep.
        taken = await queue.dequeue()
        assert taken is not None
        taken.touched = 1
        taken.status = Status.ACTIVE
        await queue.redis.set(taken.id, queue.serialize(taken))
        await queue.redis.delete(queue.namespace("sweep"))
        assert await queue.sweep(lock=1, abort=0.1) == [taken.id]
        # A job whose record is gone is dropped from the active list.
        await queue.redis.rpush(active, "saq:job:chat:ghost")
        await queue.redis.delete(queue.namespace("sweep"))
        assert await queue.sweep(lock=1) == ["saq:job:chat:ghost"]
    finally:
        await jobs.aclose()
        await queue.disconnect()


# -- the command --------------------------------------------------------------------------------


def test_worker_needs_redis(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("GENESIS_REDIS_URL", raising=False)
    monkeypatch.chdir(Path(__file__).parent)
    assert main(["worker"]) == 2
    assert "GENESIS_REDIS_URL" in capsys.readouterr().err


def test_worker_refuses_invalid_settings(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    assert main(["worker", "--concurrency", "0"]) == 2
    assert "GENESIS_JOB_CONCURRENCY" in capsys.readouterr().err
