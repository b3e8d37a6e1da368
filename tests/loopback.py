"""A loopback HTTP server for URL-source tests: real sockets, real urllib/FFmpeg clients, no network.

``http_server`` (a fixture, registered in tests/conftest.py) serves the shipped astronaut photo
(``/astronaut.jpg``, and ``/photo`` without an extension but with an image Content-Type), a page
that is not an image (``/notimage.jpg``), a 404 for every unknown path, and what a test adds to
``routes``. Each request is logged in ``requests`` as ``(method, path)``, so a test can assert what
was (not) fetched. :func:`refused_url` names a port nothing listens on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from feredge.calibration.reference import demo_image_path


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    delay: float = 0.0  # seconds before the answer (timeouts)
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    head_status: int | None = None  # HEAD answers this status instead (405: "use GET")


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _answer(self, head: bool) -> None:
                server.requests.append(("HEAD" if head else "GET", self.path))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404, "File not found")
                    return
                if route.delay:
                    time.sleep(route.delay)
                status = route.head_status if head and route.head_status is not None else route.status
                self.send_response(status)
                self.send_header("Content-Type", route.content_type)
                if route.send_length:
                    self.send_header("Content-Length", route.headers.get("Content-Length", str(len(route.body))))
                for key, value in route.headers.items():
                    if key != "Content-Length":
                        self.send_header(key, value)
                self.end_headers()
                if not head and status < 300:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: fine
                        self.wfile.write(route.body)

            def do_GET(self) -> None:
                self._answer(head=False)

            def do_HEAD(self) -> None:
                self._answer(head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="loopback-http", daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url(path: str = "/astronaut.jpg", scheme: str = "http") -> str:
    """A URL on a loopback port that was free a moment ago: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}{path}"


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    photo = demo_image_path().read_bytes()
    server.routes["/astronaut.jpg"] = Route(photo, "image/jpeg")
    server.routes["/photo"] = Route(photo, "image/jpeg")
    server.routes["/notimage.jpg"] = Route(b"<html><body>Not an image</body></html>", "text/html")
    yield server
    server.close()
