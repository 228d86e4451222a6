"""The web app for people: plain HTML, CSS and JavaScript (``webapp/``, package data, no build
step) that uses only the public HTTP API with the user's token, held in memory. The download
function serves it: ``GET /`` the page, ``GET /app/<file>`` its scripts and styles, each with a
strict Content-Security-Policy (nothing but this origin; no inline code, no CDN)."""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

from flask import Request, Response

from invoiceflow import naming
from invoiceflow.errors import NotFound

#: the page and its assets load only from this origin; the PDF preview is a blob: URL in a frame
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "frame-src 'self' blob:",
        "object-src 'self' blob:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE = "index.html"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
#: the assets served below /app/: a plain name with a script or style suffix
_ASSET = re.compile(r"^[a-z][a-z0-9-]*\.(?:js|css)$")


def serves(path: str) -> bool:
    """Whether ``path`` (without a trailing slash) is the web app's."""
    assets = naming.WEBAPP_ASSETS_PATH
    return path in (naming.WEBAPP_PATH, assets) or path.startswith(assets + "/")


@functools.lru_cache(maxsize=8)
def _file(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and ETag, read and hashed once per process."""
    entry = resources.files("invoiceflow").joinpath("webapp", name)
    if not entry.is_file():
        return None
    data = entry.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def serve(request: Request, path: str) -> Response:
    """The page (``/``), an asset (``/app/<file>``), or a redirect to the page (``/app``)."""
    if path == naming.WEBAPP_ASSETS_PATH:
        return Response(status=302, headers={"Location": naming.WEBAPP_PATH})
    if path == naming.WEBAPP_PATH:
        name = PAGE
    else:
        name = path.removeprefix(naming.WEBAPP_ASSETS_PATH + "/")
        if not _ASSET.match(name):
            raise NotFound("no such web app file")
    found = _file(name)
    if found is None:
        raise NotFound("no such web app file")
    data, etag = found
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # revalidated on every load (ETag), so a new release is never hidden behind a cache
        "Cache-Control": "no-cache",
        "ETag": etag,
    }
    if etag in (request.headers.get("If-None-Match") or ""):
        return Response(status=304, headers=headers)
    suffix = name[name.rindex(".") :]
    return Response(data, status=200, headers=headers, content_type=_CONTENT_TYPES[suffix])
