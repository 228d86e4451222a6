"""The public HTTP routes, read from the Gateway API manifest
(``knative/ingress/gateway-api.yaml``): the one source of what the public host serves, as the
Trigger manifests are of event routing.

Each ``HTTPRoute`` rule sends its path matches (``Exact`` or ``PathPrefix``) to the Knative
Service named by the first label of its ``URLRewrite`` hostname
(``login.invoiceflow.svc.cluster.local`` -> ``login``). Problems are collected and raised
together as one :class:`~invoiceflow.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from invoiceflow.errors import ConfigError, Problem
from invoiceflow.records import record

#: The manifest, relative to the manifests' directory (``knative/``, ``KNATIVE_DIR``).
GATEWAY_MANIFEST = Path("ingress") / "gateway-api.yaml"
EXACT = "Exact"
PATH_PREFIX = "PathPrefix"


@record
class PublicRoute:
    """A public path, how it is matched, and the Knative Service that serves it."""

    path: str
    match: str
    service: str

    def matches(self, path: str) -> bool:
        """As the Gateway API matches: ``Exact`` the path itself; ``PathPrefix`` the path and
        what is below it, element by element (``/invoices`` matches ``/invoices/1``, not
        ``/invoicesx``)."""
        if path == self.path:
            return True
        return self.match == PATH_PREFIX and path.startswith(self.path.rstrip("/") + "/")


def load_public_routes(source: Path) -> tuple[PublicRoute, ...]:
    """The routes of the ``HTTPRoute`` documents of ``source``: the manifests' directory (its
    :data:`GATEWAY_MANIFEST`) or the manifest itself."""
    file = source / GATEWAY_MANIFEST if source.is_dir() else source
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([Problem(str(file), f"cannot be read: {exc}")]) from exc
    problems: list[Problem] = []
    routes: list[PublicRoute] = []
    for doc in documents:
        if doc.get("kind") == "HTTPRoute":
            name = (doc.get("metadata") or {}).get("name", "?")
            routes.extend(_rules(f"{file.name}: HTTPRoute {name}", doc, problems))
    seen: set[str] = set()
    for route in routes:
        if route.path in seen:
            problems.append(Problem(str(file), f"{route.path} is routed twice"))
        seen.add(route.path)
    if not routes and not problems:
        problems.append(Problem(str(file), "no HTTPRoute rule: nothing would be public"))
    if problems:
        raise ConfigError(problems)
    return tuple(routes)


def _rules(where: str, doc: dict[str, Any], problems: list[Problem]) -> Iterable[PublicRoute]:
    for number, rule in enumerate((doc.get("spec") or {}).get("rules") or [], 1):
        at = f"{where}, rule {number}"
        hosts = [
            (f.get("urlRewrite") or {}).get("hostname")
            for f in rule.get("filters") or []
            if f.get("type") == "URLRewrite"
        ]
        if len(hosts) != 1 or not isinstance(hosts[0], str):
            problems.append(Problem(at, "needs one URLRewrite hostname (the Knative Service)"))
            continue
        service = hosts[0].split(".", 1)[0]
        for match in rule.get("matches") or []:
            path = match.get("path") or {}
            kind, value = path.get("type", PATH_PREFIX), path.get("value")
            if kind not in (EXACT, PATH_PREFIX) or not isinstance(value, str) or value[:1] != "/":
                problems.append(Problem(at, f"unsupported path match {path!r}"))
                continue
            yield PublicRoute(value, kind, service)


def route_for(routes: Iterable[PublicRoute], path: str) -> PublicRoute | None:
    """The route serving ``path``, or None."""
    return next((route for route in routes if route.matches(path)), None)
