"""The distribution: the wheel carries every asset, and the installed `genesis` is ours."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from http.client import HTTPResponse
from importlib.metadata import entry_points, metadata
from pathlib import Path
from urllib.request import urlopen

import pytest

import genesis
from genesis.assets import NAMES, AssetNotFoundError, asset_path
from harness.processes import ManagedProcess, free_port, http_ok

ROOT = Path(__file__).resolve().parents[2]
OUR_SUMMARY = "metric-gated delivery pipeline"
# A file each asset must hold, so an empty folder does not pass for a shipped asset.
MARKERS = {
    "templates": "README.md",
    "charts": "README.md",
    "workflows": "README.md",
    "monitoring": "prometheus",
}


def test_installed_genesis_is_ours() -> None:
    # The unrelated project on the public index has the same name; make sure it is not it.
    meta = metadata("genesis")
    assert OUR_SUMMARY in meta["Summary"]
    assert meta["Version"] == genesis.__version__
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["genesis"] == "genesis.cli:run"


def test_assets_resolve_in_the_checkout() -> None:
    assert set(MARKERS) == set(NAMES)
    for name, marker in MARKERS.items():
        assert (asset_path(name) / marker).exists(), name


def test_unknown_asset_is_a_clear_error() -> None:
    with pytest.raises(AssetNotFoundError, match="unknown asset 'helmchart'; known assets: "):
        asset_path("helmchart")


@pytest.mark.slow
@pytest.mark.integration
def test_wheel_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("genesis-*.whl"))
    assert len(wheels) == 1
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    # A file path, never the name `genesis`: the index's `genesis` is another project.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    probe = (
        "import json, genesis; from genesis.assets import NAMES, asset_path; "
        "from importlib.metadata import metadata; "
        "print(json.dumps({'file': genesis.__file__, 'summary': metadata('genesis')['Summary'], "
        "'assets': {n: str(asset_path(n)) for n in NAMES}}))"
    )
    found = json.loads(
        subprocess.run(
            [str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
        ).stdout
    )
    site = env_dir / "lib"
    assert Path(found["file"]).is_relative_to(site)
    assert OUR_SUMMARY in found["summary"]
    for name, marker in MARKERS.items():
        path = Path(found["assets"][name])
        assert path.is_relative_to(site), f"{name} resolved outside the installed wheel: {path}"
        assert (path / marker).exists(), f"{name} lacks {marker} in the wheel"

    # The wheel carries the Vite build of web/ (hatch_build.py), inside the package.
    web_dist = Path(found["file"]).parent / "service" / "web_dist"
    assert (web_dist / "index.html").is_file(), "the wheel lacks the chat UI"
    assert list((web_dist / "assets").glob("index-*.js")), "the wheel lacks the UI's script"

    # The console script of the installed wheel serves the embedded default, and the page.
    port = free_port()
    server = ManagedProcess(
        "wheel-genesis",
        [str(env_dir / "bin" / "genesis"), "serve", "--port", str(port)],
        log_dir=tmp_path,
        cwd=tmp_path,
    )
    with server.start():
        server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=60)
        page = fetch(f"http://127.0.0.1:{port}/")
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        html = page.read().decode()
        assert '<div id="root"></div>' in html
        script = re.search(r'<script type="module" crossorigin src="(/assets/[^"]+\.js)"', html)
        assert script, html
        bundle = fetch(f"http://127.0.0.1:{port}{script[1]}")
        assert bundle.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert b"genesis chat" in bundle.read()


def fetch(url: str) -> HTTPResponse:
    response: HTTPResponse = urlopen(url, timeout=10)
    assert response.status == 200, url
    return response
