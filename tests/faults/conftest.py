"""Fixtures for the fault tests: free and closed ports, a slow OTLP endpoint, a throwaway Redis."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import pytest


class SlowEndpoint:
    """An HTTP endpoint on 127.0.0.1 that reads a request and answers only when released."""

    def __init__(self) -> None:
        self.got_request = threading.Event()
        self.got_traces = threading.Event()  # a request to /v1/traces arrived
        self.release = threading.Event()
        self.requests = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(10)
                try:
                    head = self.request.recv(65536)
                except OSError:
                    return
                outer.requests += 1
                outer.got_request.set()
                if head.startswith(b"POST /v1/traces "):
                    outer.got_traces.set()
                outer.release.wait(10)
                try:
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass  # the client gave up waiting: that is the point

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_endpoint() -> Iterator[SlowEndpoint]:
    endpoint = SlowEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()
