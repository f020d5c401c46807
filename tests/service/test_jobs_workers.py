"""Async jobs end to end: real `genesis serve`, real `genesis worker` processes, real Redis and
the OpenAI-compatible stub as the upstream (slow or failing on cue).

Nothing lost: a worker killed mid-job, a worker told to stop, Redis restarted with queued
jobs, a burst larger than the concurrency; and retries, timeouts and cancels as promised.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.genesis import GenesisFactory
from harness.openai_stub import DEFAULT_REPLY, Fault, OpenAIStub
from harness.plugin import RedisFactory
from harness.redis import RedisServer
from harness.worker import WorkerFactory, genesis_workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "gpt-4o-mini"
PICKUP_SECONDS = 12
FINAL = {"succeeded", "failed", "cancelled"}


class Jobs:
    """The /v1/jobs API of one running service, with polling helpers."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def submit(self, prompt: str = "hello", **extra: Any) -> str:
        response = self.http.post(
            "/v1/jobs",
            json={"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra},
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        assert response.headers["Location"] == f"/v1/jobs/{job_id}"
        return job_id

    def get(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait(
        self,
        job_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in FINAL,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not get there in {timeout}s: {job}")
            time.sleep(0.1)


@pytest.fixture
def settings(openai_stub: OpenAIStub) -> dict[str, str]:
    """Shared by the service and its workers, as in production: one settings model."""
    return {
        "GENESIS_PROVIDER": "openai",
        "GENESIS_OPENAI_BASE_URL": openai_stub.base_url,
        "GENESIS_OPENAI_API_KEY": "sk-test",
        # Retries are the job's business here, not the provider's.
        "GENESIS_OPENAI_MAX_RETRIES": "0",
        "GENESIS_CIRCUIT_FAILURE_THRESHOLD": "0",
        "GENESIS_JOB_PICKUP_SECONDS": str(PICKUP_SECONDS),
        "GENESIS_JOB_RETRY_BASE_SECONDS": "0.2",
        "GENESIS_JOB_RETRY_MAX_SECONDS": "1",
        "GENESIS_GRACE_SECONDS": "20",
    }


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerFactory]:
    with genesis_workers(tmp_path) as start:
        yield start


@pytest.fixture
def jobs_setup(
    settings: dict[str, str],
    redis_factory: RedisFactory,
    genesis_server: GenesisFactory,
    workers: WorkerFactory,
) -> Iterator[Callable[..., tuple[Jobs, RedisServer, Callable[..., Any]]]]:
    clients: list[httpx.Client] = []

    def setup(
        *, persistent: bool = False, extra: Mapping[str, str] | None = None
    ) -> tuple[Jobs, RedisServer, Callable[..., Any]]:
        redis = redis_factory(persistent=persistent)
        settings.update({"GENESIS_REDIS_URL": redis.url, **(extra or {})})
        server = genesis_server(settings)
        http = httpx.Client(base_url=server.url, timeout=10)
        clients.append(http)

        def start_worker(**overrides: str) -> Any:
            return workers({**settings, **overrides})

        return Jobs(http), redis, start_worker

    yield setup
    for http in clients:
        http.close()


def _pid_of(worker: Any) -> str:
    return f"-{worker.pid}-"


def test_a_job_of_a_killed_worker_is_finished_by_another(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, redis, start_worker = jobs_setup()
    first = start_worker(GENESIS_JOB_CONCURRENCY="1")
    openai_stub.script(Fault.ok(latency=60))
    job_id = jobs.submit()
    # saq marks a job active a moment before the worker writes its attempt to the history.
    running = jobs.wait(job_id, lambda job: job["status"] == "running" and job["history"])
    openai_stub.wait_for_requests(1)
    assert _pid_of(first) in running["history"][0]["worker"]
    second = start_worker()

    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    done = jobs.wait(job_id, timeout=PICKUP_SECONDS + 15)

    assert done["status"] == "succeeded", done
    assert done["result"]["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert done["attempts"] == 2
    abandoned, retried = done["history"]
    assert abandoned["outcome"] == "abandoned"
    assert _pid_of(first) in abandoned["worker"]
    assert retried["outcome"] == "succeeded"
    assert _pid_of(second) in retried["worker"]
    # Picked up within the bound the setting promises (whole seconds on both sides).
    assert retried["started_at"] - int(killed_at) <= PICKUP_SECONDS + 1
    # One answer: the dead attempt's call and the one that made the single stored result.
    assert len(openai_stub.chat_requests) == 2
    assert redis.command("KEYS", "saq:job:*") == [f"saq:job:chat:{job_id}".encode()]


def test_sigterm_finishes_running_jobs_takes_no_new_ones_and_exits_0(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, _, start_worker = jobs_setup()
    openai_stub.set_default(Fault.ok(latency=3))
    worker = start_worker(GENESIS_JOB_CONCURRENCY="2")
    running = [jobs.submit(f"running {n}") for n in range(2)]
    for job_id in running:
        jobs.wait(job_id, lambda job: job["status"] == "running")
    waiting = jobs.submit("waiting")

    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0

    for job_id in running:
        assert jobs.get(job_id)["status"] == "succeeded"
    left = jobs.get(waiting)
    assert left["status"] == "queued"
    assert left["attempts"] == 0
    assert len(openai_stub.chat_requests) == 2
    # Still there for the next worker.
    start_worker()
    assert jobs.wait(waiting)["status"] == "succeeded"


def test_queued_jobs_survive_a_redis_restart(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, redis, start_worker = jobs_setup(persistent=True)
    queued = [jobs.submit(f"survivor {n}") for n in range(5)]

    # SIGKILL: with AOF and fsync always, what was acknowledged is on disk.
    redis.restart(hard=True)

    for job_id in queued:
        assert jobs.get(job_id)["status"] == "queued"
    start_worker()
    for job_id in queued:
        assert jobs.wait(job_id)["status"] == "succeeded"
    assert len(openai_stub.chat_requests) == 5


def test_a_burst_larger_than_the_concurrency_completes_in_full(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, _, start_worker = jobs_setup()
    openai_stub.reply = lambda body: f"echo: {body['messages'][-1]['content']}"
    openai_stub.set_default(Fault.ok(latency=0.2))
    worker = start_worker(GENESIS_JOB_CONCURRENCY="3")
    burst = {jobs.submit(f"burst {n}"): f"echo: burst {n}" for n in range(24)}

    answers = {}
    for job_id in burst:
        job = jobs.wait(job_id, timeout=30)
        assert job["status"] == "succeeded", job
        answers[job_id] = job["result"]["choices"][0]["message"]["content"]

    assert answers == burst
    assert len(openai_stub.chat_requests) == 24
    listed = jobs.http.get("/v1/jobs", params={"limit": 100}).json()
    assert {job["id"] for job in listed["data"]} == set(burst)
    metrics = httpx.get(worker.metrics_url).text
    assert 'genesis_jobs_finished_total{outcome="succeeded",queue="chat",track="stable"} 24.0' in (
        metrics
    )
    assert 'genesis_job_queue_depth{queue="chat",track="stable"}' in metrics


def test_cancel_a_running_and_a_queued_job(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, _, start_worker = jobs_setup()
    openai_stub.script(Fault.ok(latency=60))
    start_worker(GENESIS_JOB_CONCURRENCY="1")
    running = jobs.submit("long")
    jobs.wait(running, lambda job: job["status"] == "running")
    waiting = jobs.submit("never")

    cancelled = jobs.http.delete(f"/v1/jobs/{waiting}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert jobs.http.delete(f"/v1/jobs/{running}").json()["status"] == "cancelled"
    stopped = jobs.wait(running, lambda job: job["finished_at"] is not None)
    assert stopped["status"] == "cancelled"
    assert stopped["history"][-1]["outcome"] == "cancelled"

    # The worker is free again, and the cancelled job never ran.
    after = jobs.submit("after")
    assert jobs.wait(after)["status"] == "succeeded"
    assert jobs.get(waiting)["attempts"] == 0
    prompts = [request.json["messages"][-1]["content"] for request in openai_stub.chat_requests]
    assert prompts == ["long", "after"]
    # Cancelling a finished job changes nothing.
    assert jobs.http.delete(f"/v1/jobs/{after}").json()["status"] == "succeeded"


def test_bad_requests_fail_at_once_retryable_errors_retry_and_timeouts_end_a_job(
    jobs_setup: Callable[..., Any], openai_stub: OpenAIStub
) -> None:
    jobs, _, start_worker = jobs_setup(extra={"GENESIS_JOB_TIMEOUT_SECONDS": "2"})
    start_worker()

    openai_stub.script(Fault.status(400, message="bad prompt"))
    rejected = jobs.wait(jobs.submit("bad"))
    assert rejected["status"] == "failed"
    assert rejected["attempts"] == 1
    assert rejected["error"]["code"] == "upstream_rejected"
    assert rejected["history"][0]["outcome"] == "failed"
    assert len(openai_stub.chat_requests) == 1

    openai_stub.script(Fault.status(503))
    recovered = jobs.wait(jobs.submit("flaky"))
    assert recovered["status"] == "succeeded", recovered
    assert recovered["attempts"] == 2
    first, second = recovered["history"]
    assert first["outcome"] == "retried"
    assert first["error"]["type"] == "server_error"
    assert second["outcome"] == "succeeded"

    openai_stub.script(Fault.ok(latency=30))
    slow = jobs.wait(jobs.submit("slow"))
    assert slow["status"] == "failed"
    assert slow["error"]["code"] == "job_timeout"
    assert slow["attempts"] == 1
    assert slow["history"][0]["outcome"] == "timed_out"
    # Failed jobs stay listed.
    listed = {job["id"]: job["status"] for job in jobs.http.get("/v1/jobs").json()["data"]}
    assert listed[rejected["id"]] == "failed"
    assert listed[slow["id"]] == "failed"
