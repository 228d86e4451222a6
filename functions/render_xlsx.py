"""The render-xlsx function (CloudEvents over HTTP): see invoiceflow.steps."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("render-xlsx")
def render_xlsx(request: Request) -> Response:
    with log_context(function="render-xlsx"):
        return steps.render_xlsx(request)
