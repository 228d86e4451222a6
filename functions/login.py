"""The login function (HTTP): see invoiceflow.api.login."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("login")
def login(request: Request) -> Response:
    with log_context(function="login", path=request.path):
        return api.login(request)
