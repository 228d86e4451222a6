"""The download function (HTTP): see invoiceflow.api.download."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.edge import serve_http
from invoiceflow.health import probed


@functions_framework.http
@probed("download")
def download(request: Request) -> Response:
    return serve_http(api.download, request)
