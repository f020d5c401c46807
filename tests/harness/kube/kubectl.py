"""kubectl against one kubeconfig: the single way the harness and the tests talk to the API."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message holds the command and its stderr."""


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        return self.run(*args, stdin=stdin, timeout=timeout).stdout

    def json(self, *args: str, timeout: float = 60.0) -> Any:
        return json.loads(self(*args, "-o", "json", timeout=timeout))

    def apply(self, *documents: dict[str, Any], namespace: str | None = None) -> str:
        """`kubectl apply` of manifests given as Python data."""
        text = yaml.safe_dump_all(documents, sort_keys=False)
        scope = ["--namespace", namespace] if namespace else []
        return self("apply", *scope, "-f", "-", stdin=text)
