"""The chart's copies of the monitoring assets: `python -m genesis.pipeline.chart sync|check`.

A Helm chart can read only its own files, and the dashboards and Prometheus rules live in
genesis.observability (one source of truth). So charts/genesis/files holds copies, refreshed by
`sync` (which `nox -s build` runs before packaging) and compared by `check` (a test runs it).
Copies, not symlinks: Helm's packager, wheels and Windows checkouts do not all keep symlinks.
The rules are stored as JSON (the same data; Helm reads it with fromJson): a verbatim YAML copy
would be linted again with the rules' long PromQL lines outside their lint exemption.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MONITORING = Path("src/genesis/observability/monitoring")
CHART = Path("charts/genesis")


@dataclass(frozen=True)
class Copy:
    source: Path
    target: Path
    pattern: str
    suffix: str = ""

    def target_name(self, source: Path) -> str:
        return source.stem + self.suffix if self.suffix else source.name

    def content(self, source: Path) -> bytes:
        if not self.suffix:
            return source.read_bytes()
        import yaml

        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        return (json.dumps(data, indent=2) + "\n").encode()


COPIES = (
    Copy(MONITORING / "dashboards", CHART / "files/dashboards", "*.json"),
    Copy(MONITORING / "prometheus/rules", CHART / "files/rules", "*.yml", ".json"),
)


def _expected(root: Path, copy: Copy) -> dict[str, bytes]:
    return {
        copy.target_name(path): copy.content(path)
        for path in sorted((root / copy.source).glob(copy.pattern))
    }


def _present(root: Path, copy: Copy) -> dict[str, Path]:
    glob = f"*{copy.suffix}" if copy.suffix else copy.pattern
    return {path.name: path for path in (root / copy.target).glob(glob)}


def stale_copies(root: Path) -> list[Path]:
    """Chart files that differ from their source, are missing, or have no source any more."""
    stale: list[Path] = []
    for copy in COPIES:
        expected, present = _expected(root, copy), _present(root, copy)
        for name, content in expected.items():
            target = present.get(name)
            if target is None or target.read_bytes() != content:
                stale.append(root / copy.target / name)
        stale.extend(target for name, target in sorted(present.items()) if name not in expected)
    return stale


def sync(root: Path) -> list[Path]:
    """Make the chart's copies equal to their sources; returns the files it changed."""
    changed = stale_copies(root)
    for copy in COPIES:
        expected = _expected(root, copy)
        (root / copy.target).mkdir(parents=True, exist_ok=True)
        for name, target in _present(root, copy).items():
            if name not in expected:
                target.unlink()
        for name, content in expected.items():
            (root / copy.target / name).write_bytes(content)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    if args == ["sync"]:
        for path in sync(root):
            print(f"updated {path.relative_to(root)}")
        return 0
    if args == ["check"]:
        stale = stale_copies(root)
        for path in stale:
            print(f"stale: {path.relative_to(root)}", file=sys.stderr)
        if stale:
            print("run: python -m genesis.pipeline.chart sync", file=sys.stderr)
        return 1 if stale else 0
    print("usage: python -m genesis.pipeline.chart sync|check", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
