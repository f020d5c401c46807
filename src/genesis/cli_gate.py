"""`genesis gate run|retro|lint`: argument parsing and the handlers, over genesis.gate.

Exit codes follow the verdicts: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR. Anything that keeps
the gate from measuring is an ERROR too, usage mistakes included (an unknown flag, a spec that
does not exist or does not validate, a bad time), so a pipeline never mistakes a typo for an
inconclusive canary (2 is argparse's usual usage code). `lint` answers 0 when the spec is
valid (warnings allowed), 1 when it has errors, 3 when it cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

EXIT_ERROR = 3
EXIT_LINT_PROBLEMS = 1


class _GateParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors exit 3 (ERROR), not argparse's 2 (INCONCLUSIVE)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        if message.startswith(("argument --from", "argument --to")) and "expected one" in message:
            # argparse takes "-10m" for an option; "--from=-10m" and "now-10m" are unambiguous.
            message += " (for a relative time write --from=-10m or --from now-10m)"
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A leaf parser sees every remaining argument; leftovers would otherwise be reported
        # by the top-level parser, with exit code 2.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not self._subparsers:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class UsageError(Exception):
    """A problem with what was asked, reported as one line without a traceback."""


def add_gate_commands(commands: Any) -> None:
    """Register `gate` on the top-level subparsers action of `genesis`."""
    gate = commands.add_parser(
        "gate",
        help="judge a canary against its baseline from Prometheus metrics",
        description="The metric gate (docs/gate.md). Exit codes: 0 PASS, 1 FAIL, "
        "2 INCONCLUSIVE, 3 ERROR (including usage errors).",
    )
    # The `gate` parser was made by the top-level parser's class; its own usage errors
    # (a missing or unknown gate command) must exit 3 as well.
    gate.__class__ = _GateParser
    actions = gate.add_subparsers(
        dest="gate_command", metavar="GATE_COMMAND", required=True, parser_class=_GateParser
    )

    run = actions.add_parser(
        "run",
        help="live: measure during a deploy, then compare the window",
        description="Measure every interval and compare the canary against the baseline over "
        "the window (docs/gate.md). Progress goes to stderr, the verdict line to stdout.",
    )
    _common(run)
    traffic = run.add_argument_group(
        "synthetic traffic (optional, bounded: at most 100 requests/s per target, 1 hour)"
    )
    traffic.add_argument(
        "--traffic",
        metavar="URL",
        action="append",
        default=[],
        help="send steady requests to URL while the gate runs (repeatable; explicit URLs only)",
    )
    traffic.add_argument(
        "--traffic-rate",
        metavar="N",
        type=float,
        default=5.0,
        help="requests per second per URL (default 5)",
    )
    traffic.add_argument(
        "--traffic-duration",
        metavar="DURATION",
        help="how long to send, e.g. 5m (default: until the gate ends)",
    )
    traffic.add_argument(
        "--traffic-body",
        metavar="JSON",
        help="POST this JSON body instead of GET (@FILE reads it from a file)",
    )
    run.set_defaults(handler=_run)

    retro = actions.add_parser(
        "retro",
        help="judge a past window at once: what would the gate have said",
        description="Judge the window from --from to --to at once through range queries.",
    )
    _common(retro)
    retro.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="TIME",
        help="start: RFC 3339 (2024-05-01T12:00:00Z), unix seconds, or relative to now "
        '("now-10m", or "--from=-10m": argparse reads a bare -10m as an option)',
    )
    retro.add_argument("--to", dest="end", default="now", metavar="TIME", help="end (default: now)")
    retro.set_defaults(handler=_retro)

    lint = actions.add_parser(
        "lint",
        help="check an analysis spec (every problem with its line)",
        description="Validate a spec; without FILE, the built-in analysis. Exit 0 valid "
        "(warnings allowed), 1 invalid, 3 unreadable.",
    )
    lint.add_argument("file", nargs="?", metavar="FILE", help="the spec (default: built-in)")
    lint.add_argument(
        "--render",
        action="store_true",
        help="also print every query as rendered for both tracks",
    )
    _variables_and_tracks(lint)
    lint.set_defaults(handler=_lint)


def _variables_and_tracks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-track", help="baseline track label (default: the spec's)")
    parser.add_argument("--canary-track", help="canary track label (default: the spec's)")
    parser.add_argument(
        "--var",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set a spec variable, e.g. --var service=chat (repeatable)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument("--spec", metavar="FILE", help="analysis spec (default: built-in)")
    _variables_and_tracks(parser)
    parser.add_argument("--json", metavar="FILE", help="write the JSON report (- for stdout)")
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="write the Markdown report (also appended to $GITHUB_STEP_SUMMARY when set)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per Prometheus request (10)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries on connection errors and 5xx, with backoff (2)",
    )
    auth = parser.add_argument_group("Prometheus auth (secrets only from files)")
    auth.add_argument("--bearer-token-file", metavar="FILE")
    auth.add_argument("--basic-auth-user", metavar="NAME")
    auth.add_argument("--basic-auth-password-file", metavar="FILE")


# --- shared steps --------------------------------------------------------------------------


def _fail(command: str, message: str) -> int:
    print(f"genesis gate {command}: {message}", file=sys.stderr)
    return EXIT_ERROR


def _variables(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {pair!r}: write NAME=VALUE, e.g. --var service=chat")
        values[name.strip()] = value
    return values


def _load_spec(path: str | None) -> Any:
    from genesis.gate import spec as specs

    if path is None:
        return specs.builtin()
    try:
        return specs.load(path)
    except OSError as exc:
        raise UsageError(f"cannot read the spec {path!r}: {exc.strerror}") from None


def _gate_run(args: argparse.Namespace, observer: Any) -> Any:
    from genesis.gate.prometheus import PrometheusClient, credentials
    from genesis.gate.run import GateRun

    spec = _load_spec(args.spec)
    auth = credentials(args.bearer_token_file, args.basic_auth_user, args.basic_auth_password_file)
    if args.timeout <= 0 or args.retries < 0:
        raise UsageError("--timeout must be positive and --retries not negative")
    client = PrometheusClient(
        args.prometheus, timeout=args.timeout, retries=args.retries, auth=auth
    )
    return GateRun(
        spec,
        client,
        baseline_track=args.baseline_track,
        canary_track=args.canary_track,
        variables=_variables(args.var),
        observer=observer,
    )


def _write_reports(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        text = result.to_json() + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
    markdown = result.to_markdown()
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")


def _finish(args: argparse.Namespace, result: Any) -> int:
    _write_reports(args, result)
    judgment = result.judgment
    if args.json != "-":
        print(f"{judgment.verdict.value} (score {judgment.score:g}): {judgment.reason}")
    code: int = result.exit_code
    return code


def _guarded(command: str, body: Any) -> int:
    """Run a handler body; expected problems become one message and exit code 3."""
    from genesis.gate.prometheus import PrometheusError
    from genesis.gate.run import GateSetupError
    from genesis.gate.spec import SpecError
    from genesis.gate.traffic import TrafficError

    try:
        code: int = body()
    except SpecError as exc:
        return _fail(command, str(exc))
    except (UsageError, GateSetupError, PrometheusError, TrafficError, ValueError) as exc:
        return _fail(command, str(exc))
    except OSError as exc:
        return _fail(command, f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    except KeyboardInterrupt:
        return _fail(command, "interrupted before a verdict")
    return code


def _display() -> Any:
    from genesis.gate.display import GateDisplay

    return GateDisplay()


# --- handlers ------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    def body() -> int:
        from genesis.gate.duration import parse_duration
        from genesis.gate.plan import live_plan
        from genesis.gate.traffic import MAX_DURATION, TrafficDriver, traffic_plan

        gate = _gate_run(args, _display())
        driver = None
        if args.traffic:
            if args.traffic_duration is not None:
                duration = parse_duration(args.traffic_duration)
            else:
                planned = live_plan(gate.spec, 0.0).end
                duration = min(max(planned, 1.0), MAX_DURATION)
            plan = traffic_plan(args.traffic, args.traffic_rate, duration, _body(args))
            for url in plan.remote:
                print(
                    f"genesis gate run: warning: sending synthetic traffic to {url}, "
                    "which is not on this machine",
                    file=sys.stderr,
                )
            driver = TrafficDriver(plan).start()
        try:
            result = gate.live()
        finally:
            if driver is not None:
                driver.stop()
        if driver is not None:
            result = replace(result, extra={"traffic": driver.summary()})
        return _finish(args, result)

    return _guarded("run", body)


def _body(args: argparse.Namespace) -> bytes | None:
    import json

    if args.traffic_body is None:
        return None
    text = str(args.traffic_body)
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--traffic-body is not JSON: {exc}") from None
    return text.encode()


def _retro(args: argparse.Namespace) -> int:
    def body() -> int:
        from genesis.gate.times import parse_window

        try:
            start, end = parse_window(args.start, args.end, time.time())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        gate = _gate_run(args, _display())
        return _finish(args, gate.retro(start, end))

    return _guarded("retro", body)


def _lint(args: argparse.Namespace) -> int:
    def body() -> int:
        from genesis.gate import spec as specs
        from genesis.gate.duration import format_duration
        from genesis.gate.lint import lint
        from genesis.gate.plan import live_plan

        if args.file is None:
            source, text = specs.BUILTIN_SOURCE, specs.builtin_text()
        else:
            source = args.file
            try:
                text = Path(args.file).read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot read {args.file!r}: {exc.strerror}") from None
        problems = lint(text, source)
        for problem in problems:
            print(f"{source}:{problem}")
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            print(f"{source}: {len(errors)} error(s)", file=sys.stderr)
            return EXIT_LINT_PROBLEMS
        spec = specs.parse(text, source)
        lasts = format_duration(live_plan(spec, 0.0).end)
        warned = f", {len(problems)} warning(s)" if problems else ""
        print(f"{source}: valid{warned}; a live run takes {lasts}")
        if args.render:
            _print_rendered(spec, args)
        return 0

    return _guarded("lint", body)


def _print_rendered(spec: Any, args: argparse.Namespace) -> None:
    from genesis.gate.run import GateSetupError
    from genesis.gate.spec import templates_of
    from genesis.gate.template import GATE_SET_VARIABLES, TemplateError

    overrides = _variables(args.var)
    for name in overrides:
        if name in GATE_SET_VARIABLES:
            raise GateSetupError(f"--var {name}: {{{{{name}}}}} is set by the gate itself")
    tracks = (args.baseline_track or spec.baseline_track, args.canary_track or spec.canary_track)
    for metric in spec.metrics:
        for where, template in templates_of(metric):
            # Threshold queries run for the canary only; comparison queries for both tracks.
            for track in tracks if where.startswith("compare") else tracks[1:]:
                try:
                    query = spec.render(template, track, overrides)
                except TemplateError as exc:
                    raise UsageError(f"{metric.name} {where}: {exc}") from None
                print(f"# {metric.name} {where} [{track}]\n{' '.join(query.split())}")
