"""Jobs in Redis, through saq: enqueue, read, list per owner, cancel; and the worker's queue.

saq keeps each job as one JSON record (`saq:job:QUEUE:ID`) and moves ids between a `queued`
and an `active` list, so a job a dead worker held is still in `active` for the sweep to find.
genesis adds one sorted set per owner (the API key's name) so `GET /v1/jobs` lists the
caller's jobs without scanning Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Job, Status
from saq.queue.redis import RedisQueue

from genesis.observability import JobOutcome, ServiceMetrics
from genesis.service.jobs.model import (
    CANCELLED_MARKER,
    CHAT_COMPLETION,
    FINAL_STATUSES,
    JobObject,
    JobStatus,
    pickup_timers,
    public_status,
    seconds,
    settled_history,
)
from genesis.service.schemas import ChatCompletion, ErrorDetail
from genesis.service.settings import Settings
from genesis.service.stores.redis import redis_client as shared_redis_client

log = structlog.get_logger("genesis.jobs")

_INDEX_SLACK_SECONDS = 86_400
# Seconds a worker's blocking dequeue waits before it looks at its shutdown flag again.
_DEQUEUE_POLL_SECONDS = 1.0
_REDIS_DOWN_PAUSE_SECONDS = 1.0
# Put a job a stopping worker just took back at the head of the queue, unless a sweep
# already moved it: only then is it still in `active`.
_PUT_BACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
    redis.call('LPUSH', KEYS[2], ARGV[1])
    return 1
end
return 0
"""
# saq's sweep script: take the sweep lock for `lock` seconds, then read every active job;
# nil when another worker holds the lock.
_SWEEP = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
redis.call('SETEX', KEYS[1], ARGV[1], 1)
local id_jobs = {}
for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    id_jobs[i] = {v, redis.call('GET', v)}
end
return id_jobs
"""


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


def redis_client(settings: Settings, *, blocking: bool = False) -> aioredis.Redis:
    """A client that replaces a connection a Redis restart closed at once (one retry).

    A worker's client blocks in BLMOVE for a second at a time, so its reads may take longer
    than the API's, which must not keep a request waiting on an unreachable Redis.
    """
    assert settings.redis_url is not None
    return shared_redis_client(
        settings.redis_url.get_secret_value(),
        timeout=_DEQUEUE_POLL_SECONDS + 5 if blocking else 2.0,
        connect_timeout=2.0,
    )


def _abandoned(attempts: int) -> ErrorDetail:
    return ErrorDetail(
        message=f"The job's worker stopped responding during each of its {attempts} "
        "attempts (GENESIS_JOB_MAX_ATTEMPTS); it was given up",
        type="server_error",
        code="job_abandoned",
    )


def _internal() -> ErrorDetail:
    return ErrorDetail(
        message="Internal error while running the job", type="server_error", code="internal_error"
    )


def job_object(job: Job) -> JobObject:
    """The client's view of a saq job record."""
    meta: dict[str, Any] = job.meta
    status = public_status(job.status.value, job.error)
    finished = status in FINAL_STATUSES
    finished_at = (seconds(job.completed) or seconds(job.touched)) if finished else None
    error: ErrorDetail | None = None
    if status == JobStatus.FAILED:
        if meta.get("error"):
            error = ErrorDetail.model_validate(meta["error"])
        elif job.status == Status.ABORTED:
            error = _abandoned(job.attempts)
        else:
            error = _internal()
    result = (
        ChatCompletion.model_validate(job.result)
        if status == JobStatus.SUCCEEDED and job.result
        else None
    )
    return JobObject(
        id=job.key,
        status=status,
        model=str(meta.get("model", "")),
        queue=job.get_queue().name,
        created_at=seconds(job.queued) or 0,
        started_at=seconds(job.started),
        finished_at=finished_at,
        expires_at=finished_at + job.ttl if finished_at is not None and job.ttl > 0 else None,
        attempts=job.attempts,
        max_attempts=job.retries,
        history=settled_history(meta.get("history", []), status, finished_at),
        result=result,
        error=error,
    )


class JobQueue:
    """The API's side: one queue (the first of GENESIS_JOB_QUEUES), jobs owned by key names."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.job_queue_names[0]
        self.redis = redis or redis_client(settings)
        self.saq = RedisQueue(self.redis, name=self.name)
        self._metrics = metrics
        self._timers = pickup_timers(settings.job_pickup_seconds)

    def _index(self, owner: str) -> str:
        return f"genesis:jobs:{self.name}:owner:{owner}"

    async def enqueue(self, owner: str, request: dict[str, Any], model: str) -> JobObject:
        settings = self.settings
        job = Job(
            function=CHAT_COMPLETION,
            kwargs={"request": request},
            key=new_job_id(),
            # Our own timeout fires first (worker.py); saq's is the backstop its sweep uses.
            timeout=int(settings.job_timeout_seconds) + settings.job_pickup_seconds,
            heartbeat=self._timers.heartbeat_seconds,
            retries=settings.job_max_attempts,
            # Kept this long when it fails; a success shortens it to the result TTL.
            ttl=settings.job_failed_ttl_seconds,
            retry_delay=settings.job_retry_base_seconds,
            retry_backoff=settings.job_retry_max_seconds,
            meta={"owner": owner, "model": model, "history": []},
        )
        await self.saq.enqueue(job)
        index = self._index(owner)
        longest = max(settings.job_failed_ttl_seconds, settings.job_result_ttl_seconds)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(index, {job.key: job.queued})
            pipe.expire(index, longest + _INDEX_SLACK_SECONDS)
            await pipe.execute()
        return job_object(job)

    async def _owned(self, owner: str, job_id: str) -> Job | None:
        job = await self.saq.job(job_id)
        if job is None or job.meta.get("owner") != owner:
            # Someone else's job does not exist, as far as this caller can tell.
            return None
        return job

    async def get(self, owner: str, job_id: str) -> JobObject | None:
        job = await self._owned(owner, job_id)
        return job_object(job) if job is not None else None

    async def list(self, owner: str, limit: int) -> tuple[list[JobObject], bool]:
        """The owner's newest jobs, and whether older ones exist; forgotten ones drop out."""
        index = self._index(owner)
        members = await self.redis.zrevrange(index, 0, limit)
        keys = [member.decode() for member in members if isinstance(member, bytes)]
        jobs = await self.saq.jobs(keys)
        gone = [key for key, job in zip(keys, jobs, strict=True) if job is None]
        if gone:
            await self.redis.zrem(index, *gone)
        found = [job_object(job) for job in jobs if job is not None]
        return found[:limit], len(found) > limit

    async def cancel(self, owner: str, job_id: str) -> JobObject | None:
        """Cancel a queued or running job; a finished one is returned as it is."""
        job = await self._owned(owner, job_id)
        if job is None:
            return None
        if public_status(job.status.value, job.error) in FINAL_STATUSES:
            return job_object(job)
        was_active = job.status in (Status.ACTIVE, Status.ABORTING)
        job.ttl = self.settings.job_result_ttl_seconds
        # A queued job is finished here at once; a running one is stopped by its worker,
        # which checks for aborts every second.
        await self.saq.abort(job, CANCELLED_MARKER)
        if job.status != Status.ABORTED and not was_active:
            # Waiting out a retry backoff: in neither list, so nobody else would end it.
            await self.saq.finish(job, Status.ABORTED, error=CANCELLED_MARKER)
        if job.status == Status.ABORTED and self._metrics is not None:
            self._metrics.job_finished(self.name, JobOutcome.CANCELLED)
        return job_object(job)

    async def aclose(self) -> None:
        # At shutdown an unreachable Redis has nothing left to tell us.
        with contextlib.suppress(RedisError, OSError):
            await self.saq.disconnect()


class WorkerQueue(RedisQueue):
    """saq's Redis queue with a shutdown switch: once `closing`, it hands out no more jobs.

    saq's own dequeue blocks until a job arrives, so a worker told to stop would still take
    the next job; this one waits in short steps, and a job it took after the switch goes
    back to the head of the queue. It also waits out a Redis restart instead of spinning.
    """

    def __init__(self, redis: aioredis.Redis, name: str) -> None:
        super().__init__(redis, name=name)
        self.closing = False
        self._put_back = self.redis.register_script(_PUT_BACK)
        self._sweep_script = self.redis.register_script(_SWEEP)
        self._unmarked: set[bytes] = set()

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """saq's sweep, with one fix: a job in `active` not yet marked active is swept only
        when this worker's previous sweep saw it so too.

        A worker moves a job to `active` and marks it active a moment later; saq's own sweep
        takes any job in between for a dead one, aborts it and runs it a second time.
        Jobs marked active are swept as saq does: when their heartbeat or timeout ran out.
        """
        active = self.namespace("active")
        id_jobs = await self._sweep_script(
            keys=[self.namespace("sweep"), active], args=[lock], client=self.redis
        )
        if id_jobs is None:
            return []
        unmarked = {
            job_id
            for job_id, job_bytes in id_jobs
            if job_bytes and (job := self.deserialize(job_bytes)) and job.status != Status.ACTIVE
        }
        swept: list[str] = []
        for job_id, job_bytes in id_jobs:
            job = self.deserialize(job_bytes)
            if job is None:
                swept.append(job_id.decode())
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(active, 0, job_id)
                    pipe.zrem(self.namespace("incomplete"), job_id)
                    await pipe.execute()
                continue
            dead = job.stuck if job.status == Status.ACTIVE else job_id in self._unmarked
            if not dead:
                continue
            log.info("sweeping a job whose worker went silent", queue=self.name, job=job.key)
            swept.append(job_id.decode())
            await self.abort(job, error=self.swept_error_message)
            with contextlib.suppress(TimeoutError):
                # Its worker is gone, most likely: nobody may confirm the abort.
                await job.refresh(abort)
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        self._unmarked = unmarked
        return swept

    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109 - saq's signature
        poll_interval: float = 0.0,
    ) -> Job | None:
        while not self.closing:
            try:
                job = await super().dequeue(timeout=_DEQUEUE_POLL_SECONDS)
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("redis unreachable; waiting", queue=self.name, error=str(error))
                await asyncio.sleep(_REDIS_DOWN_PAUSE_SECONDS)
                continue
            if job is None:
                continue
            if self.closing:
                await self._put_back(
                    keys=[self.namespace("active"), self.namespace("queued")], args=[job.id]
                )
                log.info("stopping: job returned to the queue", queue=self.name, job=job.key)
                return None
            return job
        return None

    async def waiting(self) -> tuple[int, float]:
        """How many jobs wait, and how long (seconds) the oldest has waited."""
        queued = self.namespace("queued")
        depth = await self.redis.llen(queued)
        head = await self.redis.lindex(queued, 0)
        oldest = await self._get_job_by_id(head) if head else None
        age = max(0.0, time.time() - oldest.queued / 1000) if oldest and oldest.queued else 0.0
        return int(depth), age
