"""`/` and `/assets/*` in-process: content types, cache and security headers, a missing build.

The files here stand in for a Vite build so each header case is exact; the real build is
served to a real browser in tests/web and from an installed wheel in tests/packaging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart.typing import TestClientProtocol as Client

import genesis.service
from genesis.service import Settings, create_app
from genesis.service.routes.web import BUILD_HINT, WEB_DIST, content_type

INDEX = '<!doctype html><script type="module" src="/assets/index-abc123.js"></script>'


@pytest.fixture
def built(tmp_path: Path) -> Path:
    dist = tmp_path / "web_dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('chat');")
    (dist / "assets" / "index-abc123.css").write_text("body{margin:0}")
    (dist / "assets" / "favicon-abc123.svg").write_text("<svg/>")
    (dist / "assets" / "blob-abc123.bin").write_bytes(b"\0\1")
    (tmp_path / "secret.txt").write_text("outside the build")
    return dist


async def client_for(web_dist: Path) -> AsyncIterator[Client]:
    application = create_app(Settings(), web_dist=web_dist)
    async with application.test_app():
        yield application.test_client()


@pytest.fixture
async def client(built: Path) -> AsyncIterator[Client]:
    async for test_client in client_for(built):
        yield test_client


async def test_index_is_the_page_revalidated_on_every_load(client: Client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert await response.get_data(as_text=True) == INDEX
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    # A conditional reload costs no body.
    again = await client.get("/", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index-abc123.js", "text/javascript; charset=utf-8"),
        ("index-abc123.css", "text/css; charset=utf-8"),
        ("favicon-abc123.svg", "image/svg+xml; charset=utf-8"),
        ("blob-abc123.bin", "application/octet-stream"),
    ],
)
async def test_assets_have_their_type_and_are_cached_for_good(
    client: Client, name: str, expected: str
) -> None:
    response = await client.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/../secret.txt", "/index.htm"])
async def test_anything_else_is_an_openai_404(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    payload = await response.get_json()
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert "outside the build" not in await response.get_data(as_text=True)


async def test_a_checkout_without_a_build_says_how_to_build(tmp_path: Path) -> None:
    async for client in client_for(tmp_path / "never-built"):
        response = await client.get("/")
        assert response.status_code == 404
        error = (await response.get_json())["error"]
        assert error == {
            "message": BUILD_HINT,
            "type": "invalid_request_error",
            "param": None,
            "code": "web_ui_not_built",
        }
        assert "npm ci && npm run build" in error["message"]
        # The API does not depend on the page.
        assert (await client.get("/v1/models")).status_code == 200


async def test_the_page_is_not_part_of_the_api_document(client: Client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    assert not [
        path for path in document["paths"] if not path.startswith(("/v1", "/livez", "/readyz"))
    ]


def test_the_build_lives_inside_the_package() -> None:
    # Same place in a checkout (editable install) and in an installed wheel.
    assert Path(genesis.service.__file__).parent / "web_dist" == WEB_DIST


def test_unknown_suffixes_are_octet_streams() -> None:
    assert content_type("x.JS") == "text/javascript"
    assert content_type("LICENSE") == "application/octet-stream"
