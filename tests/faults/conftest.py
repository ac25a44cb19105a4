"""Fixtures for the fault tests: free and closed ports, a slow OTLP endpoint, a throwaway Redis."""

from __future__ import annotations

import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from ..conftest import require


def free_port() -> int:
    """A port nothing listens on (bound and released at once): connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class ThrowawayRedis:
    """A redis-server of our own on a free 127.0.0.1 port, killed and restarted mid-test."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed")
    assert binary is not None
    server = ThrowawayRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
