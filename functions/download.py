"""The download function (HTTP): see invoiceflow.api.download."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("download")
def download(request: Request) -> Response:
    with log_context(function="download", path=request.path):
        return api.download(request)
