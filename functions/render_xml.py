"""The render-xml function (CloudEvents over HTTP): see invoiceflow.steps.render_xml."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.edge import serve_event
from invoiceflow.health import probed


@functions_framework.http
@probed("render-xml")
def render_xml(request: Request) -> Response:
    return serve_event(steps.render_xml, request)
