"""One function served like functions-framework does, plus ``GET /__bench/modules`` (the
names in ``sys.modules``) so the harness can see what the function imported.

    python bench/_serve.py --source functions/notify.py --target notify --port 8080

Builds the app with ``functions_framework.create_app`` (what the ``functions-framework`` CLI
does before handing it to gunicorn) and serves it with werkzeug in this one process.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    from functions_framework import create_app
    from werkzeug.serving import make_server

    app = create_app(args.target, args.source)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/__bench/modules":
            body = json.dumps(sorted(sys.modules)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    make_server("127.0.0.1", args.port, wsgi, threaded=True).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
