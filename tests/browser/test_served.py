"""The web app's files as the download function serves them: the page at ``/``, its assets
below ``/app/``, each with the strict Content-Security-Policy, and nothing else of the package."""

from __future__ import annotations

import re
from typing import Any

import pytest

from invoiceflow.webapp import CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path,content_type",
    [
        ("/", "text/html; charset=utf-8"),
        ("/app/app.js", "text/javascript; charset=utf-8"),
        ("/app/app.css", "text/css; charset=utf-8"),
    ],
)
def test_the_page_and_its_assets_are_served_without_a_token(
    download_client: Any, path: str, content_type: str
) -> None:
    r = download_client.get(path)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == content_type
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache"
    again = download_client.get(path, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert download_client.head(path).status_code == 200


def test_the_policy_allows_only_this_origin() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_the_page_loads_only_its_own_assets(download_client: Any) -> None:
    """No CDN, no inline script or style (the policy would block them)."""
    html = download_client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert urls and all(url.startswith("/app/") for url in urls), urls
    for url in urls:
        assert download_client.get(url).status_code == 200, url
    assert "<script>" not in html and "<style" not in html and " style=" not in html


@pytest.mark.parametrize(
    "path", ["/app/index.html", "/app/missing.js", "/app/../api.py", "/app/x/app.js", "/index.html"]
)
def test_nothing_else_is_served(download_client: Any, path: str) -> None:
    r = download_client.get(path)
    assert r.status_code in (401, 404), r.status_code
    # a problem, never a file: no page, no asset, no source text
    assert r.headers["Content-Type"] == "application/problem+json", r.headers["Content-Type"]
    assert r.get_json()["status"] == r.status_code


def test_app_redirects_to_the_page_and_other_methods_are_refused(download_client: Any) -> None:
    r = download_client.get("/app")
    assert r.status_code == 302 and r.headers["Location"].endswith("/")
    assert download_client.post("/").status_code == 405
    assert download_client.post("/app/app.js").status_code == 405
