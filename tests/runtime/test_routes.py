"""The public routes, read from knative/ingress/gateway-api.yaml: what the local runtime's
public port serves (invoiceflow_local.routes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from invoiceflow.errors import ConfigError
from invoiceflow_local.routes import (
    EXACT,
    PATH_PREFIX,
    PublicRoute,
    load_public_routes,
    route_for,
)

ROOT = Path(__file__).resolve().parents[2]


def _manifest(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "gateway-api.yaml"
    path.write_text(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        "metadata: {name: api}\nspec:\n  rules:\n" + rules
    )
    return path


def test_the_repository_manifest_routes_the_http_functions() -> None:
    routes = load_public_routes(ROOT / "knative")
    assert {(r.path, r.match, r.service) for r in routes} == {
        ("/login", EXACT, "login"),
        ("/upload", EXACT, "upload"),
        ("/settings/branding", EXACT, "upload"),
        ("/download", EXACT, "download"),
        ("/invoices", PATH_PREFIX, "download"),
        ("/openapi.json", EXACT, "download"),
        ("/", EXACT, "download"),
        ("/app", PATH_PREFIX, "download"),
        ("/settings/numbering", EXACT, "upload"),
    }
    assert load_public_routes(ROOT / "knative" / "ingress" / "gateway-api.yaml") == routes


def test_matching_follows_the_gateway_api() -> None:
    exact = PublicRoute("/upload", EXACT, "upload")
    prefix = PublicRoute("/invoices", PATH_PREFIX, "download")
    assert exact.matches("/upload")
    assert not exact.matches("/upload/events") and not exact.matches("/uploads")
    assert prefix.matches("/invoices") and prefix.matches("/invoices/1/pdf")
    assert not prefix.matches("/invoicesx") and not prefix.matches("/")
    assert route_for([exact, prefix], "/invoices/1") == prefix
    assert route_for([exact, prefix], "/healthz") is None


def test_problems_are_collected(tmp_path: Path) -> None:
    path = _manifest(
        tmp_path,
        "    - matches: [{path: {type: RegularExpression, value: '/x.*'}}]\n"
        "      filters: [{type: URLRewrite, urlRewrite: {hostname: x.ns.svc.cluster.local}}]\n"
        "    - matches: [{path: {type: Exact, value: /y}}]\n"
        "    - matches: [{path: {type: Exact, value: /z}}, {path: {type: Exact, value: /z}}]\n"
        "      filters: [{type: URLRewrite, urlRewrite: {hostname: z.ns.svc.cluster.local}}]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_public_routes(path)
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "unsupported path match" in messages
    assert "URLRewrite hostname" in messages
    assert "/z is routed twice" in messages


def test_no_route_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid"):
        load_public_routes(_manifest(tmp_path, "    []\n"))
    with pytest.raises(ConfigError):
        load_public_routes(tmp_path / "missing.yaml")
