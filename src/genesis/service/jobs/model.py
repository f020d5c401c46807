"""What a job is, as clients see it, and the pure decisions about it.

No I/O here: the queue adapter (`queue.py`) stores jobs in Redis through saq, the worker
(`worker.py`) runs them, and both ask these functions what a state means, whether an error
is worth another attempt, and how often to heartbeat and sweep.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from genesis.service.schemas import ChatCompletion, ErrorDetail

#: The one function a job runs, by name (saq looks it up in the worker).
CHAT_COMPLETION = "chat_completion"
#: The error saq records when our DELETE aborts a job; it tells cancel apart from a sweep.
CANCELLED_MARKER = "cancelled by the client"
#: How long saq's sweep waits for an aborted job to settle before retrying it (its default).
SWEEP_ABORT_WAIT_SECONDS = 5
#: Statuses of upstream failures that another attempt may fix; anything else is final.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class AttemptOutcome(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: Failed with a retryable error; another attempt follows (if any are left).
    RETRIED = "retried"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    #: Stopped by the worker's shutdown after its grace period; the job went back in the queue.
    INTERRUPTED = "interrupted"
    #: The worker went silent (killed, lost) mid-attempt; a sweep put the job back in the queue.
    ABANDONED = "abandoned"


class JobAttempt(BaseModel):
    attempt: int = Field(description="1 for the first run, 2 for the next, ...")
    worker: str = Field(description="The worker that ran it: `host-pid-queue`.")
    started_at: int = Field(description="Unix seconds.")
    finished_at: int | None = Field(None, description="Unix seconds; null while it runs.")
    outcome: AttemptOutcome
    error: ErrorDetail | None = None


class JobObject(BaseModel):
    """A chat completion run in the background: `POST /v1/jobs`, then `GET /v1/jobs/{id}`."""

    id: str
    object: Literal["chat.completion.job"] = "chat.completion.job"
    status: JobStatus
    model: str
    queue: str
    created_at: int = Field(description="Unix seconds when the job was queued.")
    started_at: int | None = Field(None, description="Unix seconds the latest attempt began.")
    finished_at: int | None = Field(None, description="Unix seconds the job reached its end.")
    expires_at: int | None = Field(
        None, description="Unix seconds after which a finished job is forgotten."
    )
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int
    history: list[JobAttempt] = Field(default_factory=list)
    result: ChatCompletion | None = Field(None, description="The chat completion, on success.")
    error: ErrorDetail | None = Field(None, description="Why it failed, in OpenAI's shape.")


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobObject]
    has_more: bool


class JobListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100, description="Most jobs to return, newest first.")


def public_status(saq_status: str, error: str | None) -> JobStatus:
    """Map saq's statuses (new, queued, active, aborting, aborted, failed, complete) to ours.

    An aborted job is cancelled when the client asked for it; otherwise saq gave up on a job
    whose workers kept dying, and that is a failure.
    """
    if saq_status in ("new", "queued"):
        return JobStatus.QUEUED
    if saq_status == "active":
        return JobStatus.RUNNING
    if saq_status == "complete":
        return JobStatus.SUCCEEDED
    if saq_status == "failed":
        return JobStatus.FAILED
    if saq_status in ("aborting", "aborted"):
        if error == CANCELLED_MARKER:
            return JobStatus.CANCELLED
        # A sweep aborting a silent worker's job: it is re-queued right after.
        return JobStatus.QUEUED if saq_status == "aborting" else JobStatus.FAILED
    raise ValueError(f"unknown saq job status {saq_status!r}")


def is_retryable(status: int) -> bool:
    """Worth another attempt: upstream rate limits, bad gateways, overload and timeouts."""
    return status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class AttemptDecision:
    outcome: AttemptOutcome
    retry: bool


def after_error(status: int, attempt: int, max_attempts: int) -> AttemptDecision:
    """What an attempt that failed with an HTTP-status error leads to."""
    if is_retryable(status) and attempt < max_attempts:
        return AttemptDecision(AttemptOutcome.RETRIED, retry=True)
    return AttemptDecision(AttemptOutcome.FAILED, retry=False)


@dataclass(frozen=True)
class PickupTimers:
    """How a worker keeps `job_pickup_seconds`: a job is silent after `heartbeat_seconds`
    without a touch, sweeps run every `sweep_seconds`, and the sweep waits
    `SWEEP_ABORT_WAIT_SECONDS` for the dead attempt before re-queueing it. An idle worker
    takes it at once, so the worst case is their sum, at most `job_pickup_seconds`."""

    heartbeat_seconds: int
    sweep_seconds: int

    @property
    def touch_every_seconds(self) -> float:
        # Three touches per heartbeat window: one late write must not make a job look dead.
        return self.heartbeat_seconds / 3

    @property
    def worst_case_seconds(self) -> int:
        return self.heartbeat_seconds + self.sweep_seconds + SWEEP_ABORT_WAIT_SECONDS


def pickup_timers(pickup_seconds: int) -> PickupTimers:
    budget = pickup_seconds - SWEEP_ABORT_WAIT_SECONDS
    if budget < 2:
        raise ValueError(
            f"job pickup needs at least {SWEEP_ABORT_WAIT_SECONDS + 2} seconds, got "
            f"{pickup_seconds}"
        )
    return PickupTimers(heartbeat_seconds=budget // 2, sweep_seconds=budget // 2)


def start_attempt(
    history: Sequence[Mapping[str, Any]], attempt: int, worker: str, now: int
) -> list[dict[str, Any]]:
    """The history with a new running attempt; an earlier one left running was abandoned."""
    entries = [dict(entry) for entry in history]
    for entry in entries:
        if entry.get("outcome") == AttemptOutcome.RUNNING:
            entry["outcome"] = AttemptOutcome.ABANDONED.value
    entries.append(
        {
            "attempt": attempt,
            "worker": worker,
            "started_at": now,
            "finished_at": None,
            "outcome": AttemptOutcome.RUNNING.value,
        }
    )
    return entries


def finish_attempt(
    history: Sequence[Mapping[str, Any]],
    outcome: AttemptOutcome,
    now: int,
    error: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The history with its last attempt ended by `outcome`."""
    entries = [dict(entry) for entry in history]
    if not entries:
        raise ValueError("no attempt to finish")
    entries[-1].update(finished_at=now, outcome=outcome.value, error=dict(error) if error else None)
    return entries


def settled_history(
    history: Sequence[Mapping[str, Any]], status: JobStatus, finished_at: int | None
) -> list[JobAttempt]:
    """The history as a client should read it, whatever the worker managed to write.

    An attempt still marked running is abandoned when a later one exists or the job is
    waiting again, and takes the job's own end when the job has ended (a cancel that
    stopped it mid-call, for example).
    """
    attempts = [JobAttempt.model_validate(entry) for entry in history]
    for index, attempt in enumerate(attempts):
        if attempt.outcome != AttemptOutcome.RUNNING:
            continue
        last = index == len(attempts) - 1
        if last and status == JobStatus.RUNNING:
            continue
        if last and status in FINAL_STATUSES:
            attempt.outcome = {
                JobStatus.SUCCEEDED: AttemptOutcome.SUCCEEDED,
                JobStatus.CANCELLED: AttemptOutcome.CANCELLED,
                JobStatus.FAILED: AttemptOutcome.ABANDONED,
            }[status]
            attempt.finished_at = finished_at
        else:
            attempt.outcome = AttemptOutcome.ABANDONED
    return attempts


def seconds(millis: int | None) -> int | None:
    """saq keeps epoch milliseconds, 0 for "not yet"; clients get Unix seconds or null."""
    return millis // 1000 if millis else None
