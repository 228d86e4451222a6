"""The render-xlsx function (CloudEvents over HTTP): see invoiceflow.steps.render_xlsx."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("render-xlsx")
def render_xlsx(request: Request) -> Response:
    return serve_event(steps.render_xlsx, request)
