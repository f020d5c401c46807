"""`/`: the chat page, a React app that Vite builds from `web/` into `genesis/service/web_dist`.

The built files ship inside the wheel (hatch_build.py), so serving the page needs no Node.js.
In a checkout where nobody has built them yet, `/` answers a 404 in OpenAI's error shape that
says how to build them; the API itself works either way.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, send_from_directory
from quart_schema import hide

from genesis.service.errors import APIError

WEB_DIST = Path(__file__).resolve().parent.parent / "web_dist"

BUILD_HINT = (
    "The chat UI is not built in this installation: run `npm ci && npm run build` in web/ "
    "(docs/web.md), then reload. The API under /v1 works without it."
)

# Explicit, because `mimetypes` reads the host's /etc/mime.types and differs between Python
# versions (.js was application/javascript before 3.12); browsers refuse module scripts and
# stylesheets with the wrong type once nosniff is set. Werkzeug adds `charset=utf-8` to the
# textual ones.
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}

# The page loads only its own files and talks only to its own origin (the API).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Vite puts a content hash in every asset name, so a name never changes meaning.
IMMUTABLE = "public, max-age=31536000, immutable"
# index.html names the current assets: revalidate it on every load, so a deploy shows at once.
REVALIDATE = "no-cache"


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def web_blueprint(directory: Path = WEB_DIST) -> Blueprint:
    """The routes of the page, serving the build found in `directory`."""
    web = Blueprint("web", __name__)
    assets = directory / "assets"

    @web.get("/")
    @hide
    async def index() -> Response:
        if not (directory / "index.html").is_file():
            raise APIError(404, BUILD_HINT, code="web_ui_not_built")
        response = await send_from_directory(
            directory, "index.html", mimetype=content_type("index.html")
        )
        response.headers["Cache-Control"] = REVALIDATE
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @web.get("/assets/<path:name>")
    @hide
    async def asset(name: str) -> Response:
        # send_from_directory refuses names that leave `assets` (404).
        response = await send_from_directory(assets, name, mimetype=content_type(name))
        response.headers["Cache-Control"] = IMMUTABLE
        return response

    @web.after_request
    async def _no_sniffing(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return web
