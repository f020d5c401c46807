"""Async chat completions: `/v1/jobs` in the service, `genesis worker` to run them (saq on Redis).

`model` holds what a job is and the pure decisions (statuses, retries, pickup timers),
`queue` the Redis adapter, `routes` the HTTP API, `worker` the consumer process.
"""

from genesis.service.jobs.model import JobObject, JobStatus
from genesis.service.jobs.routes import install_jobs

__all__ = ["JobObject", "JobStatus", "install_jobs"]
