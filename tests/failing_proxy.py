"""An HTTP proxy in front of the local STAC API that fails one search request on purpose (tests only)."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FailingProxy:
    """HTTP proxy in a thread in front of ``upstream`` that answers HTTP ``status`` to the ``fail_on``-th ``/search``
    request.

    Links in the upstream's JSON are rewritten to point at the proxy, so paging goes through it.
    """

    def __init__(self, upstream: str, fail_on: int = 2, status: int = 500) -> None:
        self.upstream, self.fail_on, self.status, self.search_requests = upstream.rstrip("/"), fail_on, status, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _forward(self, body: bytes | None) -> None:
                if self.path.startswith("/search"):
                    proxy.search_requests += 1
                    if proxy.search_requests == proxy.fail_on:
                        self._reply(proxy.status, b'{"code": "ServerError", "description": "injected failure"}')
                        return
                request = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command)
                request.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(request, timeout=10) as response:
                    payload = response.read().replace(proxy.upstream.encode(), proxy.url.encode())
                    self._reply(response.status, payload)

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FailingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
