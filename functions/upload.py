"""The upload function (HTTP): see invoiceflow.api.upload."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("upload")
def upload(request: Request) -> Response:
    with log_context(function="upload", path=request.path):
        return api.upload(request)
