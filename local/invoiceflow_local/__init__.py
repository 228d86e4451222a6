"""The local runtime: Knative's Broker and Triggers on one machine.

* :mod:`~invoiceflow_local.triggers`: the Trigger manifests (``knative/``), the only
  event routing there is; :mod:`~invoiceflow_local.routes`: the public HTTP routes
  (``knative/ingress/gateway-api.yaml``).
* :mod:`~invoiceflow_local.delivery`: Knative's delivery rules (retry, backoff, dead
  letters), shared by both brokers.
* :mod:`~invoiceflow_local.broker`: the in-process broker (default).
* :mod:`~invoiceflow_local.rabbit`: the RabbitMQ broker (``RABBITMQ_URL``); imports pika.

:func:`make_broker` picks one. :mod:`~invoiceflow_local.dev` runs it all (``invoiceflow dev``),
:mod:`~invoiceflow_local.demo` shows it (``invoiceflow demo``);
:mod:`~invoiceflow_local.package_data` finds the manifests, the function entry files and the
demo invoice they need; :mod:`~invoiceflow_local.commands` adds ``dev`` and ``demo`` to the
``invoiceflow`` command line. Importing the package itself imports none of them (the command
line loads it on every run).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoiceflow_local.broker import Broker
    from invoiceflow_local.rabbit import RabbitBroker
    from invoiceflow_local.triggers import Resolver, Trigger

__all__ = ["make_broker"]


def make_broker(
    triggers: Iterable[Trigger],
    resolve: Resolver,
    *,
    rabbitmq_url: str | None = None,
    **options: Any,
) -> Broker | RabbitBroker:
    """An in-process :class:`Broker`, or a :class:`~invoiceflow_local.rabbit.RabbitBroker`
    when ``rabbitmq_url`` is given (``Settings.rabbitmq_url``). Not started: call ``start()``.

    ``options`` go to the broker (``broker=``, ``workers=``; ``store=`` for the in-process
    broker only: its durable queue, a SQL repository; for RabbitMQ ``prefix=``,
    ``consume=``, ``prefetch=``...)."""
    if rabbitmq_url:
        from invoiceflow_local.rabbit import RabbitBroker

        return RabbitBroker(triggers, resolve, url=rabbitmq_url, **options)
    from invoiceflow_local.broker import Broker

    return Broker(triggers, resolve, **options)
