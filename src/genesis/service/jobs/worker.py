"""`genesis worker`: run queued chat completions with the service's own settings and provider.

One saq `Worker` per queue in GENESIS_JOB_QUEUES, each running up to GENESIS_JOB_CONCURRENCY
jobs. Every attempt heartbeats its job, so a worker that dies is noticed by the others' sweep
and its job runs again within GENESIS_JOB_PICKUP_SECONDS. On SIGTERM or SIGINT the worker
takes no new job, lets running ones finish for GENESIS_GRACE_SECONDS (then stops them, and
they go back in the queue), and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import sys
import time
from typing import Any, TextIO

import structlog
from saq import Job, Worker
from saq.types import Context

from genesis import __version__
from genesis.observability import JobOutcome, Metrics, ServiceMetrics
from genesis.observability.logs import configure_logging
from genesis.service.errors import SERVER_ERROR, APIError
from genesis.service.jobs.model import (
    CHAT_COMPLETION,
    AttemptOutcome,
    PickupTimers,
    after_error,
    finish_attempt,
    pickup_timers,
    start_attempt,
)
from genesis.service.jobs.queue import WorkerQueue, redis_client
from genesis.service.providers import Provider, build_provider
from genesis.service.schemas import ChatCompletionRequest
from genesis.service.settings import Settings

log = structlog.get_logger("genesis.worker")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_QUEUE_SAMPLE_SECONDS = 5.0


def _now() -> int:
    return int(time.time())


def _timeout_error(seconds: float) -> APIError:
    return APIError(
        504,
        f"The job did not finish within {seconds:g} seconds (GENESIS_JOB_TIMEOUT_SECONDS)",
        type=SERVER_ERROR,
        code="job_timeout",
    )


class JobRunner:
    """The function saq calls for each attempt of a chat completion job."""

    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        metrics: Metrics,
        timers: PickupTimers,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.metrics = metrics
        self.timers = timers

    async def _heartbeat(self, job: Job, stop: asyncio.Event) -> None:
        # Touching the record is what tells the sweep this attempt is alive.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.timers.touch_every_seconds)
                return
            try:
                await job.update()
            except Exception as error:  # a Redis blip must not end the attempt
                log.warning("heartbeat failed", job=job.key, error=str(error))

    async def _record(self, job: Job, history: list[dict[str, Any]], **meta: Any) -> None:
        job.meta = {**job.meta, "history": history, **meta}

    async def run(self, ctx: Context, *, request: dict[str, Any]) -> dict[str, Any]:
        job = ctx["job"]
        worker = ctx["worker"]
        queue = job.get_queue().name
        history = start_attempt(job.meta.get("history", []), job.attempts, worker.id, _now())
        await self._record(job, history)
        await job.update(meta=job.meta)
        log.info("job started", job=job.key, attempt=job.attempts, queue=queue)
        stop = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(job, stop))
        try:
            return await self._attempt(job, queue, history, request)
        except asyncio.CancelledError:
            # Aborted by a cancel, or stopped by shutdown after the grace period; saq records
            # which, and a stopped job goes back in the queue.
            outcome = (
                AttemptOutcome.CANCELLED
                if job.status.value in ("aborting", "aborted")
                else AttemptOutcome.INTERRUPTED
            )
            await self._record(job, finish_attempt(history, outcome, _now()))
            if outcome == AttemptOutcome.CANCELLED:
                self.metrics.service.job_finished(queue, JobOutcome.CANCELLED)
            raise
        finally:
            stop.set()
            # Waited for, not cancelled: a heartbeat write must not land after the final one.
            await heartbeat

    async def _attempt(
        self, job: Job, queue: str, history: list[dict[str, Any]], request: dict[str, Any]
    ) -> dict[str, Any]:
        body = ChatCompletionRequest.model_validate(request)
        timeout = self.settings.job_timeout_seconds
        operation = self.metrics.genai.operation(
            operation="chat", provider=self.provider.name, model=body.model
        )
        try:
            async with operation as op, asyncio.timeout(timeout):
                try:
                    completion = await self.provider.complete(body)
                except APIError as error:
                    op.fail(error.code or "api_error")
                    raise
                if completion.usage is not None:
                    op.usage(
                        input_tokens=completion.usage.prompt_tokens,
                        output_tokens=completion.usage.completion_tokens,
                    )
        except TimeoutError:
            await self._fail(job, queue, history, _timeout_error(timeout), AttemptOutcome.TIMED_OUT)
            raise
        except APIError as error:
            decision = after_error(error.status, job.attempts, job.retries)
            if not decision.retry:
                await self._fail(job, queue, history, error, AttemptOutcome.FAILED)
                raise
            detail = error.body().error.model_dump()
            await self._record(job, finish_attempt(history, decision.outcome, _now(), detail))
            log.warning("job attempt failed; retrying", job=job.key, code=error.code)
            raise
        except Exception:
            await self._fail(job, queue, history, None, AttemptOutcome.FAILED)
            raise
        await self._record(job, finish_attempt(history, AttemptOutcome.SUCCEEDED, _now()))
        # A result is kept for the result TTL; failures keep the longer retention.
        job.ttl = self.settings.job_result_ttl_seconds
        self.metrics.service.job_finished(queue, JobOutcome.SUCCEEDED)
        log.info("job succeeded", job=job.key, attempt=job.attempts)
        result: dict[str, Any] = json.loads(completion.model_dump_json(exclude_none=True))
        return result

    async def _fail(
        self,
        job: Job,
        queue: str,
        history: list[dict[str, Any]],
        error: APIError | None,
        outcome: AttemptOutcome,
    ) -> None:
        detail = (
            error.body().error.model_dump()
            if error is not None
            else {"message": "Internal error while running the job", "type": SERVER_ERROR}
        )
        await self._record(job, finish_attempt(history, outcome, _now(), detail), error=detail)
        # No retry: saq retries while attempts < retries, so close that door.
        job.retries = job.attempts
        self.metrics.service.job_finished(
            queue, JobOutcome.EXPIRED if outcome == AttemptOutcome.TIMED_OUT else JobOutcome.FAILED
        )
        log.warning("job failed", job=job.key, code=detail.get("code"), attempt=job.attempts)


class GenesisWorker(Worker[Context]):
    """saq's worker, with genesis' shutdown: the CLI owns the signals, and stopping closes the
    queue to new jobs and ends the upkeep loops at once instead of after their next sleep."""

    SIGNALS: list[signal.Signals] = []  # noqa: RUF012 - overrides saq's class attribute

    def __init__(self, queue: WorkerQueue, **kwargs: Any) -> None:
        super().__init__(queue, **kwargs)
        self.worker_queue = queue
        self._upkeep: list[asyncio.Task[None]] = []

    async def upkeep(self) -> list[asyncio.Task[None]]:
        self._upkeep = await super().upkeep()
        return self._upkeep

    def begin_shutdown(self) -> None:
        self.worker_queue.closing = True
        self.event.set()

    async def stop(self) -> None:
        self.begin_shutdown()
        # Sweeps and worker info sleep for many seconds; nothing in them needs finishing.
        for task in self._upkeep:
            task.cancel()
        await super().stop()


def worker_id() -> str:
    # No colons: saq reads the id back as the last `:`-separated part of a Redis key.
    return f"{socket.gethostname()}-{os.getpid()}"


def build_workers(settings: Settings, provider: Provider, metrics: Metrics) -> list[GenesisWorker]:
    timers = pickup_timers(settings.job_pickup_seconds)
    runner = JobRunner(settings, provider, metrics, timers)
    redis = redis_client(settings, blocking=True)
    workers = []
    for name in settings.job_queue_names:
        queue = WorkerQueue(redis, name)
        workers.append(
            GenesisWorker(
                queue,
                id=f"{worker_id()}-{name}",
                functions=[(CHAT_COMPLETION, runner.run)],
                concurrency=settings.job_concurrency,
                timers={
                    "sweep": timers.sweep_seconds,
                    "abort": 1,
                    "schedule": 1,
                    "worker_info": 10,
                },
                shutdown_grace_period_s=math.ceil(settings.grace_seconds),
            )
        )
    return workers


async def _sample_queues(workers: list[GenesisWorker], metrics: ServiceMetrics) -> None:
    while True:
        for worker in workers:
            try:
                depth, age = await worker.worker_queue.waiting()
            except Exception as error:  # the gauges keep their last value meanwhile
                log.warning("cannot read the queue", queue=worker.queue.name, error=str(error))
                continue
            metrics.job_queue(worker.queue.name, depth=depth, oldest_age_seconds=age)
        await asyncio.sleep(_QUEUE_SAMPLE_SECONDS)


async def work(settings: Settings, metrics: Metrics, stopped: asyncio.Event) -> None:
    """Consume every queue until `stopped` is set, then shut down gracefully."""
    provider = build_provider(settings, metrics.service)
    workers = build_workers(settings, provider, metrics)
    sampler = asyncio.create_task(_sample_queues(workers, metrics.service))
    runs = [asyncio.create_task(worker.start()) for worker in workers]

    async def stop_on_signal() -> None:
        await stopped.wait()
        log.info("stopping: no new jobs; waiting for running ones", grace=settings.grace_seconds)
        for worker in workers:
            worker.begin_shutdown()

    stopper = asyncio.create_task(stop_on_signal())
    try:
        await asyncio.gather(*runs)
    finally:
        stopper.cancel()
        sampler.cancel()
        await asyncio.gather(stopper, sampler, return_exceptions=True)
        await provider.aclose()
        for worker in workers:
            # They share one Redis client; closing it twice is harmless.
            with contextlib.suppress(Exception):
                await worker.queue.disconnect()


def run_worker(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Run `genesis worker` until SIGTERM/SIGINT; returns the exit code."""
    from genesis.service.server import _metrics_endpoint

    configure_logging(settings.log_level, settings.log_format)
    # One process: prometheus-client's multiprocess mode (GENESIS_WORKERS > 1) is serve's.
    with _metrics_endpoint(settings.model_copy(update={"workers": 1})) as endpoint:
        metrics = Metrics(track=settings.track, version=__version__, revision=settings.revision)
        print(
            f"genesis worker on queues {', '.join(settings.job_queue_names)} "
            f"(concurrency={settings.job_concurrency}, provider={settings.provider}, "
            f"pickup<={settings.job_pickup_seconds}s, env={settings.env}"
            + (f", metrics={endpoint.url}" if endpoint else ", metrics off")
            + ")",
            file=out,
            flush=True,
        )
        asyncio.run(_main(settings, metrics))
    log.info("stopped")
    return 0


async def _main(settings: Settings, metrics: Metrics) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stopped.set)
    await work(settings, metrics, stopped)


__all__ = ["GenesisWorker", "JobRunner", "run_worker", "work"]
