"""The local runtime in its own process, for the pipeline benchmark (``python bench/_runtime.py
[--prefix P]``): the load generator must not share the runtime's interpreter (and its GIL).

Backends come from the environment exactly as for ``invoiceflow dev``. Prints one JSON line
``{"url": ..., "pid": ..., "functions": {service: pid}}`` once serving (``functions``: each
function's gunicorn master, by Knative service name; empty when the functions run inside the
runtime, ``LOCAL_WORKERS=0``), then runs until its standard input closes; then it stops and,
with ``--prefix`` (RabbitMQ), deletes the queues and exchanges it declared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", default=None, help="RabbitMQ queue/exchange prefix")
    args = parser.parse_args()

    from invoiceflow.logs import configure
    from invoiceflow.settings import Settings
    from invoiceflow_local.dev import LocalRuntime

    configure(Settings.from_env().log_level)
    options = {"prefix": args.prefix} if args.prefix else {}
    runtime = LocalRuntime("127.0.0.1", 0, **options).start()
    masters = runtime.functions.pids() if runtime.functions is not None else {}
    line = {"url": runtime.url, "pid": os.getpid(), "functions": masters}
    print(json.dumps(line), flush=True)
    try:
        sys.stdin.read()  # until the harness closes our stdin
    finally:
        runtime.stop()
        if args.prefix:
            runtime.broker.delete_topology()
    return 0


if __name__ == "__main__":
    sys.exit(main())
