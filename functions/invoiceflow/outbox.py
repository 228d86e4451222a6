"""The transactional outbox relay.

Every event that announces a state change is written to the ``outbox`` table in the same
transaction as the change. After the commit the step relays it to ``K_SINK``; if the process
dies in between, or the broker is down, the row stays pending and is sent by the next relay
(the next request of any emitting function, the local runtime's relay loop, or the
``invoiceflow outbox relay`` CronJob in a cluster). Events keep their id, so a relay that
crashes after sending but before marking repeats an event the consumers already deduplicate
by ``source`` + ``id``.
"""

from __future__ import annotations

import logging

from invoiceflow.context import Context
from invoiceflow.errors import InvoiceflowError
from invoiceflow.events import Event, make_event
from invoiceflow.stores.protocols import OutboxEvent

log = logging.getLogger(__name__)


def to_event(row: OutboxEvent) -> Event:
    return make_event(row.type, row.source, row.data, subject=row.subject, id=row.event_id,
                      extensions=row.extensions or None)


def relay(ctx: Context, limit: int = 100) -> int:
    """Send pending events, oldest first; stop at the first failure (the broker is likely
    down; the rest wait for the next relay). Returns how many were sent."""
    sent = 0
    for row in ctx.repo.pending_outbox_events(limit):
        try:
            ctx.emitter.send(to_event(row))
        except InvoiceflowError as exc:
            ctx.repo.record_outbox_failure(row.id, str(exc)[:500])
            log.warning("outbox relay stopped at event %s: %s", row.event_id, exc)
            break
        ctx.repo.mark_outbox_sent(row.id)
        sent += 1
    return sent


def relay_after_commit(ctx: Context) -> None:
    """Hand the outbox to the broker now; on failure the events wait for the next relay."""
    try:
        relay(ctx)
    except InvoiceflowError as exc:
        log.warning("outbox relay deferred: %s", exc)
