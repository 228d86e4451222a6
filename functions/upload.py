"""The upload function (HTTP): see invoiceflow.api.upload."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.edge import serve_http
from invoiceflow.health import probed


@functions_framework.http
@probed("upload")
def upload(request: Request) -> Response:
    return serve_http(api.upload, request)
