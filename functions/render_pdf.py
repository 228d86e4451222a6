"""The render-pdf function (CloudEvents over HTTP): see invoiceflow.steps.render_pdf."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("render-pdf")
def render_pdf(request: Request) -> Response:
    return serve_event(steps.render_pdf, request)
