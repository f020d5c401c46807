"""configure_logging in a fresh interpreter: levels, JSON lines, masking, stdlib bridged."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, structlog
from genesis.observability.logs import configure_logging
configure_logging("warning", "json")
log = structlog.get_logger("genesis.test")
log.info("dropped structlog line", n=1)
log.warning("kept structlog line", api_key="gsk_never", prompt_tokens=12)
logging.getLogger("hypercorn.error").info("dropped stdlib line")
logging.getLogger("hypercorn.error").error("kept stdlib line")
"""


def test_lines_below_the_level_are_dropped_and_the_rest_are_json() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["kept structlog line", "kept stdlib line"]
    kept = lines[0]
    assert kept["level"] == "warning"
    assert kept["logger"] == "genesis.test"
    assert kept["api_key"] == "[redacted]"
    assert kept["prompt_tokens"] == 12  # a token count is data, not a credential
    assert lines[1]["logger"] == "hypercorn.error"
    assert "gsk_never" not in result.stderr
