"""Property-based API testing of the real server from its own /openapi.json.

Bounded: a fixed number of examples per operation, so the run stays in seconds. Every
response is checked against the documented statuses, media types and schemas, and no input
may yield a 5xx.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from harness.genesis import genesis_servers
from harness.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 40


def test_api_conforms_to_its_schema(tmp_path: Path, redis_server: RedisServer) -> None:
    with genesis_servers(tmp_path) as start:
        # With Redis, so /v1/jobs is exercised (without it, it answers 503 by design), and
        # with conversations on (off, they answer 404 by design).
        server = start(
            {"GENESIS_REDIS_URL": redis_server.url, "GENESIS_CONVERSATION_TTL_SECONDS": "60"}
        )
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {operation.label for operation in operations} >= {
            "POST /v1/chat/completions",
            "GET /v1/models",
            "GET /readyz",
            "POST /v1/jobs",
            "GET /v1/jobs/{job_id}",
            "POST /v1/conversations",
            "POST /v1/conversations/{conversation_id}/messages",
        }
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate()

            conforms()
