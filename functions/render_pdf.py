"""The render-pdf function (CloudEvents over HTTP): see invoiceflow.steps."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("render-pdf")
def render_pdf(request: Request) -> Response:
    with log_context(function="render-pdf"):
        return steps.render_pdf(request)
