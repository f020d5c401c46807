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
    _add_gate_commands(commands)
    return parser


def _add_gate_commands(commands: Any) -> None:
    """`genesis gate run|retro|lint`: parsing and handlers live in genesis.cli_gate."""
    from genesis.cli_gate import add_gate_commands

    add_gate_commands(commands)


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
