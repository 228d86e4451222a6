"""The notify function (CloudEvents over HTTP): see invoiceflow.steps.notify."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("notify")
def notify(request: Request) -> Response:
    return serve_event(steps.notify, request)
