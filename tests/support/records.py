"""Stored records a test expects to exist: one that is missing fails the test."""

from __future__ import annotations

from invoiceflow.stores.protocols import InvoiceRecord, Notification, NotificationKind, Repository


def invoice_record(repo: Repository, invoice_id: str) -> InvoiceRecord:
    found = repo.get_invoice(invoice_id)
    assert found is not None, f"invoice {invoice_id} is not stored"
    return found


def notification_record(repo: Repository, invoice_id: str, kind: NotificationKind) -> Notification:
    found = repo.get_notification(invoice_id, kind)
    assert found is not None, f"no {kind} notification of invoice {invoice_id}"
    return found
