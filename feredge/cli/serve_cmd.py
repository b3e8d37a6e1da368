"""``feredge serve``: a real Triton Inference Server on a bundle's repository (or any repository).

Runs in the foreground until SIGINT or SIGTERM, then stops the server in-process and waits for it,
so nothing is left running (PyTriton's ``serve()`` would orphan ``tritonserver`` on SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from feredge.cli.args import int_at_least
from feredge.cli.common import add_json_flag

NAME = "serve"
HELP = "serve a bundle (export --target triton) or a Triton model repository from a real tritonserver"
EXAMPLE = "feredge serve bundles/triton --http-port 8000 --grpc-port 8001"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="REPO|BUNDLE", help="bundle with a triton/ repository, or a repo")
    parser.add_argument("--http-port", type=int_at_least(1, 65535), default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--grpc-port", type=int_at_least(1, 65535), default=8001, help="gRPC port (default 8001)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for readiness")
    add_json_flag(parser, "the ready server (pid, endpoints, models) as one JSON line")


def run(args: argparse.Namespace) -> int:
    from feredge.serve.server import TritonServer

    server = TritonServer.for_path(args.path, http_port=args.http_port, grpc_port=args.grpc_port)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start(timeout_s=args.startup_timeout)
        assert server.process is not None and server.install is not None
        if args.json:
            print(json.dumps({"pid": server.process.pid, "http": server.url, "grpc": f"127.0.0.1:{args.grpc_port}",
                              "server": server.install.source, "models": server.models, "not_loaded": server.skipped}),
                  flush=True)
        print(f"tritonserver pid {server.process.pid} ready: http {server.url}, grpc 127.0.0.1:{args.grpc_port} "
              f"({server.install.source})", flush=True)
        print(f"models: {', '.join(server.models)}", flush=True)
        for model, why in server.skipped.items():
            print(f"not loaded: {model}: {why}", flush=True)
        while not stop.wait(0.5):
            if server.process is None or server.process.poll() is not None:
                print(f"feredge: error: tritonserver exited; its log ends:\n{server.log_tail()}", file=sys.stderr)
                return 1
        print("stopping tritonserver", flush=True)
        return 0
    finally:
        code = server.stop()
        if code is not None:
            print(f"tritonserver stopped (exit {code})", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
