"""The dead-letter function (CloudEvents over HTTP): see invoiceflow.steps.dead_letter."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("dead-letter")
def dead_letter(request: Request) -> Response:
    return serve_event(steps.dead_letter, request)
