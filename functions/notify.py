"""The notify function (CloudEvents over HTTP): see invoiceflow.steps."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("notify")
def notify(request: Request) -> Response:
    with log_context(function="notify"):
        return steps.notify_step(request)
