"""The intake function (signed invoice.requested CloudEvents, cluster-local): see
invoiceflow.api.intake."""

import functions_framework
from flask import Request, Response

from invoiceflow import api
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("intake")
def intake(request: Request) -> Response:
    with log_context(function="intake"):
        return api.intake(request)
