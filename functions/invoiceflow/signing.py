"""Producer signatures on ``invoice.requested`` events (HMAC-SHA256, one key per producer).

An ``invoice.requested`` event creates an invoice in the account its ``owner_email`` names and
emails it there, so the intake function accepts one only when it is signed by a producer whose
key the operator configured (``EVENT_PRODUCER_KEYS``, a Secret; read in settings.py). Two
CloudEvents extension attributes carry the signature:

* ``signaturekeyid``: the producer's key id (e.g. ``erp``);
* ``signature``: ``v1=`` and the lowercase hex HMAC-SHA256, under that producer's secret, of the
  canonical form of the event (:func:`canonical`).

The canonical form is the UTF-8 JSON array ``[id, source, type, time, data]`` with no
whitespace, object keys sorted and non-ASCII characters kept as they are (``time`` is ``""``
when the event has none; ``data`` is the parsed JSON data). It is the same whatever the
content mode (binary or structured) and however a broker re-serializes the JSON. Send amounts
as JSON strings (``"12.50"``) so every language writes them the same way.

Signing covers id, source, type, time and data, so neither the owner, the document nor the
event's identity can be changed without the key; a replayed event has the same source and id,
which is the idempotency key: it creates nothing new.

This module does not import ``cloudevents`` (only :mod:`invoiceflow.events` does): it works on
the attributes and data that :mod:`invoiceflow.events` hands out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from invoiceflow import events
from invoiceflow.errors import Unauthorized

KEY_ID_ATTRIBUTE = "signaturekeyid"
SIGNATURE_ATTRIBUTE = "signature"
VERSION = "v1="
#: the one answer to every unsigned, wrongly signed or unknown-key event: it tells nothing
#: about which keys exist
REFUSED = "the event is not signed by a known producer (see events/README.md, 'Signing')"


def canonical(attributes: Mapping[str, Any], data: Any) -> bytes:
    """The bytes a producer signs: ``[id, source, type, time, data]`` as compact JSON."""
    time = attributes.get("time") or ""
    document = [
        str(attributes.get("id") or ""),
        str(attributes.get("source") or ""),
        str(attributes.get("type") or ""),
        str(time),
        data,
    ]
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def signature(secret: str | bytes, attributes: Mapping[str, Any], data: Any) -> str:
    """``v1=<hex HMAC-SHA256>`` of the canonical form under ``secret``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return VERSION + hmac.new(key, canonical(attributes, data), hashlib.sha256).hexdigest()


def sign_event(event: events.Event, key_id: str, secret: str | bytes) -> events.Event:
    """A copy of ``event`` carrying ``signaturekeyid`` and ``signature``: what an integrator
    (or a test) sends to the broker. Set ``time`` before signing if you set it at all."""
    attributes = events.attributes_of(event)
    return events.with_extensions(
        event,
        {KEY_ID_ATTRIBUTE: key_id, SIGNATURE_ATTRIBUTE: signature(secret, attributes, event.data)},
    )


def verify_event(event: events.Event, keys: Mapping[str, str]) -> str:
    """The key id of the producer that signed ``event``; :class:`Unauthorized` (permanent:
    dead-lettered, never retried) with one and the same message for a missing signature, an
    unknown key id, a wrong signature and data that has no canonical form (so no producer
    signed it)."""
    attributes = events.attributes_of(event)
    key_id = attributes.get(KEY_ID_ATTRIBUTE)
    sent = attributes.get(SIGNATURE_ATTRIBUTE)
    secret = keys.get(key_id) if isinstance(key_id, str) else None
    try:
        if secret is None or not isinstance(sent, str):
            # compare anyway, so an unknown key id costs the same as a known one
            _same(signature("unknown-key", attributes, event.data), str(sent))
            raise Unauthorized(REFUSED)
        if not _same(signature(secret, attributes, event.data), sent):
            raise Unauthorized(REFUSED)
    except (ValueError, TypeError, RecursionError):
        # data no producer can have signed, since it has no canonical form: a lone surrogate
        # (JSON "\ud800": UnicodeEncodeError), bytes (a binary-mode body that is not JSON,
        # structured data_base64: TypeError), JSON nested just below the parser's limit
        # (the encoder needs a few frames more: RecursionError). The same permanent 401, never
        # a 5xx the broker would retry forever
        raise Unauthorized(REFUSED) from None
    return str(key_id)


def _same(expected: str, sent: str) -> bool:
    # bytes: compare_digest refuses non-ASCII str, and a signature is attacker-controlled
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace"))
