"""Hatch build hook: the wheel and the sdist carry the chat page, built by Vite from web/.

The build lands in src/genesis/service/web_dist (git ignores it; `artifacts` in pyproject.toml
puts it in the distributions anyway). It is rebuilt only when a source under web/ is newer than
it, so repeated builds cost nothing. Building from an sdist, which holds the built page, needs
no Node.js; building from a checkout needs Node 20 and npm. Editable installs skip the hook:
`genesis serve` then serves whatever `npm run build` last wrote into the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# What the build depends on, relative to web/.
SOURCES = ("src", "index.html", "package.json", "package-lock.json", "vite.config.ts")
DIST = Path("src/genesis/service/web_dist")


def newest_mtime(paths: list[Path]) -> float:
    stamps = [0.0]
    for path in paths:
        if path.is_dir():
            stamps.extend(child.stat().st_mtime for child in path.rglob("*") if child.is_file())
        elif path.exists():
            stamps.append(path.stat().st_mtime)
    return max(stamps)


class WebBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        root = Path(self.root)
        web = root / "web"
        index = root / DIST / "index.html"
        if not web.is_dir():
            # An sdist: it holds the page built when the sdist was made.
            if not index.is_file():
                raise RuntimeError(f"{index} is missing and there is no web/ to build it from")
            return
        if index.is_file() and index.stat().st_mtime >= newest_mtime(
            [web / name for name in SOURCES]
        ):
            self.app.display_info(f"chat UI: {DIST} is up to date")
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "building genesis from a checkout builds the chat UI (web/), which needs Node.js "
                "20 and npm on PATH; or build the wheel from an sdist, which carries the UI"
            )
        env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "npm_config_fund": "false"}
        installed = web / "node_modules" / ".package-lock.json"
        lock = web / "package-lock.json"
        if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
            self.app.display_info("chat UI: npm ci")
            subprocess.run([npm, "ci", "--no-audit"], cwd=web, env=env, check=True)
        self.app.display_info(f"chat UI: npm run build -> {DIST}")
        subprocess.run([npm, "run", "build"], cwd=web, env=env, check=True)
        if not index.is_file():
            raise RuntimeError(f"npm run build did not write {index}")
