"""An account's branding settings: logo, accent colour, font family, footer, layout, default
notes, terms, payment details, locale, currency and language (``GET/PUT /settings/branding``
and ``invoiceflow branding``).

The settings are one JSON document per owner (``domain/branding.v1.schema.json``), stored
in the SQL repository as it was PUT. A PUT replaces them all and is checked first
(:func:`invoiceflow.domain.parse.check_settings`: a 422 listing every problem, each with a
JSON pointer). They are applied when a document is **accepted**
(:func:`invoiceflow.acceptance.validate_request` passes them to
:func:`~invoiceflow.domain.parse.parse_invoice` as ``defaults``): the fields a document leaves
out are filled in from them, so a stored invoice renders the same however the settings
change later. No HTTP here (:mod:`invoiceflow.api` serves them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from invoiceflow.domain.parse import check_settings, load_json
from invoiceflow.errors import ValidationError
from invoiceflow.stores.protocols import Repository

__all__ = ["InvalidBrandingSettings", "load_settings", "parse_settings", "store_settings"]

#: a settings document larger than this is refused (a logo's 512 KiB in base64, and the rest)
MAX_SETTINGS_BYTES = 1024 * 1024


class InvalidBrandingSettings(ValidationError):
    title = "Invalid branding settings"


def parse_settings(data: bytes | str) -> dict[str, Any]:
    """The settings a PUT carries, checked; InvalidBrandingSettings (422) lists every
    problem, PayloadTooLarge / MalformedJSON as for documents."""
    settings = load_json(data, max_bytes=MAX_SETTINGS_BYTES)
    problems = check_settings(settings)
    if problems:
        n = len(problems)
        raise InvalidBrandingSettings(
            problems, f"{n} problem{'s' if n != 1 else ''} in the branding settings"
        )
    return dict(settings)


def store_settings(repo: Repository, owner_id: str, settings: Mapping[str, Any]) -> None:
    """Replace the owner's settings (already checked by :func:`parse_settings`)."""
    repo.put_branding(owner_id, json.dumps(settings, ensure_ascii=False, separators=(",", ":")))


def load_settings(repo: Repository, owner_id: str) -> dict[str, Any]:
    """The owner's settings; ``{}`` when none were ever stored."""
    stored = repo.get_branding(owner_id)
    return {} if stored is None else dict(json.loads(stored))
