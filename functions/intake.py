"""The intake function (signed invoice.requested CloudEvents, cluster-local):
see invoiceflow.steps.intake."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("intake")
def intake(request: Request) -> Response:
    return serve_event(steps.intake, request)
