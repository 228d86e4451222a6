"""The cold-start baseline: the smallest functions-framework function (answers 200 "ok")."""

import functions_framework
from flask import Request


@functions_framework.http
def hello(request: Request) -> str:
    return "ok"
