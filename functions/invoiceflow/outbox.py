"""The transactional outbox relay.

Every event that announces a state change is written to the ``outbox`` table in the same
transaction as the change. After the commit the step relays *that* event to ``K_SINK``; if
the process dies in between, or the broker is down, the row stays pending and is sent by the
next relay (the local runtime's relay loop, or the ``invoiceflow outbox relay`` CronJob in a
cluster). A relay first claims its rows (``claimed_until``, a lease), so two relays never
send the same row, and a request never re-sends other requests' events. Events keep their
id, so a relay that crashes after sending but before marking repeats an event the consumers
already deduplicate by ``source`` + ``id``.

An event the broker refuses for good (:class:`~invoiceflow.errors.EventRefused`: an answer
about the event itself, such as 400 or 413) would be refused at every relay and, sent oldest
first, would hold up every later row: its row is set aside instead (``set_aside_at``), logged
at ERROR, and the relay goes on. Nothing is lost: the operator lists such rows with
``invoiceflow outbox set-aside`` and makes them pending again with ``invoiceflow outbox
retry`` (docs/operations.md). Any other failure (the broker down or throttling) stops the
relay, as one row's outage is every row's.

A sent row is read by nothing: ``invoiceflow outbox prune`` deletes it once it is
``--older-than`` days old (docs/operations.md, Retention).

An ``uploaded`` row written before its routing attributes existed (an upgrade with rows still
pending) is sent with them, derived from its ``formats`` (:func:`to_event`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from invoiceflow import naming
from invoiceflow.context import Context
from invoiceflow.errors import EventRefused, InvoiceflowError
from invoiceflow.events import INVOICE_UPLOADED, Event, make_event
from invoiceflow.stores.protocols import NewOutboxEvent, OutboxEvent

log = logging.getLogger(__name__)

#: the routing attributes of ``uploaded`` events (naming.uploaded_routes)
_ROUTES = frozenset(naming.route_attribute(step) for step in naming.RENDER_STEP_FORMATS)


def to_event(row: OutboxEvent) -> Event:
    extensions = row.extensions
    if row.type == INVOICE_UPLOADED and not _ROUTES.intersection(extensions):
        # written before the routing attributes (pending at the upgrade): the same attributes
        # from its formats, else no render step's Trigger would deliver it
        extensions = {**naming.uploaded_routes(row.data.get("formats")), **extensions}
    return make_event(
        row.type,
        row.source,
        row.data,
        subject=row.subject,
        id=row.event_id,
        extensions=extensions or None,
    )


def relay(
    ctx: Context,
    limit: int = 100,
    keys: Sequence[tuple[str, str]] | None = None,
    *,
    raise_failure: bool = False,
) -> int:
    """Claim pending events (only ``keys``, ``(source, event_id)`` pairs, when given) and send
    them, oldest first. A row the broker refuses for good is set aside (logged at ERROR with
    the event's id and the broker's status, for the operator) and the relay goes on; any
    other failure stops it (the broker is likely down; the rest wait for the next relay, an
    expected wait: logged at INFO; ``raise_failure``: raised, for a caller that backs off). A
    row another relay has claimed is left to it, so concurrent relays never send the same row
    twice. Returns how many were sent."""
    rows = ctx.repo.claim_outbox_events(limit, lease=ctx.settings.outbox_claim_seconds, keys=keys)
    sent = done = 0
    failure: InvoiceflowError | None = None
    try:
        for row in rows:
            try:
                ctx.emitter.send(to_event(row))
            except EventRefused as exc:
                ctx.repo.set_outbox_event_aside(row.id, str(exc)[:500])
                log.error(
                    "outbox event %s (%s) set aside: the broker refused it for good with HTTP "
                    "%s; see invoiceflow outbox set-aside",
                    row.event_id,
                    row.type,
                    exc.broker_status,
                )
                done += 1
                continue
            except InvoiceflowError as exc:
                ctx.repo.record_outbox_failure(row.id, str(exc)[:500])
                log.info("outbox relay stopped at event %s: %s", row.event_id, exc)
                failure = exc
                break
            ctx.repo.mark_outbox_sent(row.id)
            sent += 1
            done += 1
    finally:
        if done < len(rows):  # what this relay did not get to: the next relay's, at once
            ctx.repo.release_outbox_claims([r.id for r in rows[done:]])
    if failure is not None and raise_failure:
        raise failure
    return sent


def relay_after_commit(ctx: Context, events: Iterable[NewOutboxEvent | tuple[str, str]]) -> None:
    """Hand the request's own ``events`` (or ``(source, event_id)`` pairs) to the broker now,
    never the rest of the outbox (the relay loop or CronJob sends leftovers); on failure they
    wait for the next relay."""
    keys = [e if isinstance(e, tuple) else (e.source, e.event_id) for e in events]
    if not keys:
        return
    try:
        relay(ctx, limit=len(keys), keys=keys)
    except InvoiceflowError as exc:  # the events wait for the next relay: expected, not alarming
        log.info("outbox relay deferred: %s", exc)
