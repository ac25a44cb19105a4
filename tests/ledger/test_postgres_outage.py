"""PostgreSQL made unreachable mid-run (a proxy stopped, connections terminated), then restored."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg

from genai_meter.ledger import LedgerWriter, open_ledger

from ._records import many
from .conftest import PG_BASE


class _Proxy:
    """A TCP forwarder on 127.0.0.1 to PostgreSQL that can be stopped and restarted on its port."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread on Linux
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def _count(url: str) -> int:
    with open_ledger(url) as ledger:
        return ledger.count()


def test_unreachable_postgres_spools_then_replays_exactly(pg_schema: str, spool_path: Path) -> None:
    proxy = _Proxy()
    proxy.start()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?schema={pg_schema}"
    direct = f"{PG_BASE}?schema={pg_schema}"
    records = many(3000)
    writer = LedgerWriter(url, spool_path=spool_path, batch_size=250, db_timeout_s=1.0)
    try:
        for record in records[:1000]:
            writer.submit(record)
        assert writer.flush()
        assert _count(direct) == 1000

        proxy.stop()  # nothing listens on the writer's port any more
        for record in records[1000:2000]:
            writer.submit(record)
        assert writer.flush()
        assert writer.rows_spooled == 1000
        assert _count(direct) == 1000

        proxy.start()  # same port again
        for record in records[2000:]:
            writer.submit(record)
        writer.close(timeout=15)
    finally:
        proxy.stop()
    assert _count(direct) == 3000
    assert writer.rows_written == 3000
    assert spool_path.stat().st_size == 0
    assert not writer.dead_letter_path.exists(), "an unreachable database is an outage: no row is set aside"


def test_terminated_connections_lose_nothing(pg_url: str, pg_schema: str, spool_path: Path) -> None:
    records = many(2000)
    app = f"writer_{pg_schema}"
    writer = LedgerWriter(f"{pg_url}&application_name={app}", spool_path=spool_path, batch_size=100)
    for record in records[:1000]:
        writer.submit(record)
    assert writer.flush()
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    for record in records[1000:]:
        writer.submit(record)
    writer.close(timeout=15)
    assert _count(pg_url) == 2000
    assert writer.rows_written == 2000
    assert writer.faults >= 1
    assert writer.rows_dead_lettered == 0, "a terminated connection is an outage: no row is set aside"
