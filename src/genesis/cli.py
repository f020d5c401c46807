"""The `genesis` command: parses arguments, calls the library, prints, and exits.

Exit codes: 0 success, 2 bad usage or invalid settings; subcommands document their own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from genesis import __version__

EXIT_USAGE = 2


def _settings_error(error: ValidationError) -> str:
    """Each problem as `GENESIS_NAME: message`, never echoing the offending value."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in problem["loc"])
        name = f"GENESIS_{field.upper()}" if field else "settings"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}")
    return "invalid settings:\n" + "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    from genesis.service.server import ListenError, run_server
    from genesis.service.settings import load_settings

    overrides: dict[str, Any] = {
        name: value
        for name in ("host", "port", "workers", "provider", "model")
        if (value := getattr(args, name)) is not None
    }
    try:
        settings = load_settings(**overrides)
    except ValidationError as error:
        print(f"genesis serve: {_settings_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_server(settings)
    except ListenError as error:
        print(f"genesis serve: {error}", file=sys.stderr)
        return 1


def _worker(args: argparse.Namespace) -> int:
    from genesis.service.settings import WorkerSettings, load_settings

    overrides: dict[str, Any] = {
        name: value
        for name in ("job_queues", "job_concurrency", "provider", "model")
        if (value := getattr(args, name)) is not None
    }
    try:
        settings = load_settings(model=WorkerSettings, **overrides)
    except ValidationError as error:
        print(f"genesis worker: {_settings_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    if settings.redis_url is None:
        print(
            "genesis worker: jobs live in Redis: set GENESIS_REDIS_URL (or _FILE)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from genesis.service.jobs.worker import run_worker
    from genesis.service.server import ListenError

    try:
        return run_worker(settings)
    except ListenError as error:
        print(f"genesis worker: {error}", file=sys.stderr)
        return 1


def _add_worker_command(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run the consumers of /v1/jobs",
        description="Run queued chat completion jobs (POST /v1/jobs) from Redis with the "
        "service's settings and provider. SIGTERM: take no new jobs, finish running ones "
        "(GENESIS_GRACE_SECONDS), exit 0. See docs/operations.md, Workers.",
    )
    worker.add_argument(
        "--queues",
        dest="job_queues",
        help="queues to consume, comma-separated (GENESIS_JOB_QUEUES)",
    )
    worker.add_argument(
        "--concurrency",
        dest="job_concurrency",
        type=int,
        help="jobs run at once per queue (GENESIS_JOB_CONCURRENCY, default 4)",
    )
    worker.add_argument("--provider", help="offline or openai (GENESIS_PROVIDER)")
    worker.add_argument("--model", help="model name to serve (GENESIS_MODEL)")
    worker.set_defaults(handler=_worker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesis",
        description="genesis: a metric-gated delivery pipeline and an OpenAI-compatible "
        "chat service.",
    )
    parser.add_argument("--version", action="version", version=f"genesis {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the chat service",
        description="Run the OpenAI-compatible chat service under Hypercorn. Flags override "
        "GENESIS_* environment variables and .env files (see docs/configuration.md).",
    )
    serve.add_argument("--host", help="address to bind (GENESIS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (GENESIS_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (GENESIS_WORKERS, default 1)")
    serve.add_argument(
        "--provider",
        help="offline (demo text, no network) or openai (GENESIS_PROVIDER, default offline)",
    )
    serve.add_argument("--model", help="model name to serve (GENESIS_MODEL)")
    serve.set_defaults(handler=_serve)
    _add_worker_command(commands)
    _add_gate_commands(commands)
    _add_keys_commands(commands)
    return parser


def _add_gate_commands(commands: Any) -> None:
    """`genesis gate run|retro|lint`: parsing and handlers live in genesis.cli_gate."""
    from genesis.cli_gate import add_gate_commands

    add_gate_commands(commands)


def _keys_new(args: argparse.Namespace) -> int:
    from genesis.service.keys import key_line, new_key, parse_line

    key = new_key()
    try:
        line = key_line(args.name, key) + (f" models={args.models}" if args.models else "")
        # The line must read back as the service will read it.
        parse_line(line, "--models")
    except ValueError as error:
        print(f"genesis keys new: {error}", file=sys.stderr)
        return EXIT_USAGE
    # stdout is the key, then its line, so `| tail -n 1 >> keys` appends just the line.
    print(key)
    print(line)
    print(
        "genesis keys new: give the first line to the client (it is shown only now); "
        "append the second to GENESIS_API_KEYS_FILE; running services pick it up within "
        "GENESIS_API_KEYS_RELOAD_SECONDS (10 s by default), no restart needed",
        file=sys.stderr,
    )
    return 0


def _add_keys_commands(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="manage API keys of the chat service",
        description="API keys for GENESIS_API_KEYS_FILE (docs/operations.md).",
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="print a fresh API key and its keys file line",
        description="Print a fresh API key (first line) and the NAME:sha256:HEX line for "
        "GENESIS_API_KEYS_FILE (second line). Only the line is stored; the key is shown once.",
    )
    new.add_argument("name", metavar="NAME", help="who the key is for (letters, digits, _.-)")
    new.add_argument(
        "--models",
        metavar="MODEL[,MODEL...]",
        help="restrict the key to these models (adds models=... to the line)",
    )
    new.set_defaults(handler=_keys_new)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    code: int = args.handler(args)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
