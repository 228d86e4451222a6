"""The login function (HTTP): see invoiceflow.api.login."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.edge import serve_http
from invoiceflow.health import probed


@functions_framework.http
@probed("login")
def login(request: Request) -> Response:
    return serve_http(api.login, request)
