"""The dead-letter function (CloudEvents over HTTP): see invoiceflow.steps."""

import functions_framework
from flask import Request, Response

from invoiceflow import steps
from invoiceflow.health import probed
from invoiceflow.logs import log_context


@functions_framework.http
@probed("dead-letter")
def dead_letter(request: Request) -> Response:
    with log_context(function="dead-letter"):
        return steps.dead_letter_step(request)
