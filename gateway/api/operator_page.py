"""The operator page (``/ui/``) and the gateway's icon (``/favicon.ico``): static files shipped inside the
package (``gateway/ui/static``), public like the icon of any site. The page holds no data of its own: its
scripts log in and read everything from the admin API (``/admin/api/``), which asks for an admin client.

Only files of the known types under that folder are served, with a strict Content-Security-Policy: the
page runs no inline script or style and talks to no other origin, so an injected string can only ever be
text on it."""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web

from gateway.errors import NotFound

STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ico": "image/x-icon",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    hdrs.X_FRAME_OPTIONS: "DENY",
    "Referrer-Policy": "no-referrer",
    # the names carry no version: a browser may keep a copy but asks (ETag, Last-Modified) before using it,
    # so an upgraded gateway never runs with last version's scripts
    hdrs.CACHE_CONTROL: "no-cache",
}


def _found(relative: str) -> Path | None:
    """The file under ``STATIC`` that ``relative`` names, if it is one of the known types."""
    try:
        path = (STATIC / relative).resolve()
        found = path.suffix in CONTENT_TYPES and path.is_relative_to(STATIC) and path.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system: no such file
        return None
    return path if found else None


def _file(relative: str) -> web.FileResponse:
    path = _found(relative)
    if path is None:
        raise NotFound(f"No such file on the operator page: {relative[:200]}")
    return web.FileResponse(path, headers={**PAGE_HEADERS, hdrs.CONTENT_TYPE: CONTENT_TYPES[path.suffix]})


async def redirect(request: web.Request) -> web.Response:
    """``/ui`` -> ``/ui/``: relative, so that it holds behind a proxy that serves the gateway under a prefix."""
    return web.Response(status=308, headers={hdrs.LOCATION: "ui/", **PAGE_HEADERS})


async def index(request: web.Request) -> web.FileResponse:
    return _file("index.html")


async def asset(request: web.Request) -> web.FileResponse:
    return _file(request.match_info["path"])


async def favicon(request: web.Request) -> web.FileResponse:
    return _file("favicon.ico")
