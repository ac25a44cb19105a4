"""One bad row never holds back the others: values made storable, refused rows set aside, the spool
replayed past lines it cannot use, and no row contents in the logs."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

import genai_meter
from genai_meter import names
from genai_meter._record import CallRecord
from genai_meter._runtime import configure, get_runtime
from genai_meter.ledger import LedgerWriter, open_ledger
from genai_meter.ledger._rows import COLUMNS, INT64_MAX, INT64_MIN, Row, RowMaker
from genai_meter.ledger._spool import PartialWrite, Spool

from ..conftest import Telemetry, fake_provider_settings
from ..openai.test_chat import MESSAGES, client, usage_headers
from ._records import BASE_ROW, DAY1, many
from .conftest import PG_BASE

REFUSED = "refused-user"


def _export(url: str) -> list[dict[str, Any]]:
    with open_ledger(url) as ledger:
        return list(ledger.export())


def _refuse_user(url: str, user: str) -> None:
    """Make the database itself refuse every row of `user`, as it refuses a value it cannot take."""
    with open_ledger(url):  # creates the schema
        pass
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse_test BEFORE INSERT ON genai_meter_calls"
                f" WHEN NEW.user_id = '{user}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        return
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {}.genai_meter_calls ADD CONSTRAINT refuse_test CHECK (user_id <> {})").format(
                sql.Identifier(schema), sql.Literal(user)
            )
        )


def _dead_letters(writer: LedgerWriter) -> list[dict[str, Any]]:
    return [json.loads(line) for line in writer.dead_letter_path.read_text(encoding="utf-8").splitlines()]


def _as_dead_letter_row(record: CallRecord) -> dict[str, Any]:
    """The row a dead letter holds for `record`: its stored values by column, through JSON."""
    return json.loads(json.dumps(dict(zip(COLUMNS, RowMaker().row(record), strict=True))))


def test_values_no_backend_takes_are_stored_made_safe(ledger_url: str, spool_path: Path) -> None:
    poisoned = CallRecord(
        time=DAY1 + 5,
        provider="openai",
        operation="chat",
        request_model="gpt-4o-mini",
        response_id="resp-\x00nul",
        request_id="req-1",
        user="bob\x00evil",
        tenant="acme\udcff",
        feature="\ud83dhalf",
        input_tokens=10**19,
        output_tokens=-(10**19),
        cache_read_tokens=float("inf"),  # type: ignore[arg-type]
        reasoning_tokens=float("nan"),  # type: ignore[arg-type]
        cost_input_usd=float("inf"),
        cost_usd=float("nan"),
        latency_s=float("inf"),
        metadata={"note\x00": "a\x00b", "s": "\udcff"},
    )
    timeless = many(1, prefix="timeless")[0]
    timeless.time = float("nan")
    good = many(3, start=DAY1 + 60)
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in [*good[:2], poisoned, timeless, good[2]]:
            writer.submit(record)
    rows = {row["call_key"]: row for row in _export(ledger_url)}
    assert set(rows) == {"r-0", "r-1", "r-2", "resp-\ufffdnul", "timeless-0"}
    assert (writer.rows_written, writer.rows_spooled, writer.rows_dead_lettered, writer.faults) == (5, 0, 0, 0)
    assert not writer.dead_letter_path.exists()
    row = rows["resp-\ufffdnul"]
    assert {name: row[name] for name in row if name not in ("ts", "day")} == {
        **BASE_ROW,
        "call_key": "resp-\ufffdnul",
        "response_id": "resp-\ufffdnul",
        "request_id": "req-1",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "user_id": "bob\ufffdevil",
        "tenant": "acme\ufffd",
        "feature": "\ufffdhalf",
        "input_tokens": INT64_MAX,
        "output_tokens": INT64_MIN,
        "cache_read_tokens": INT64_MAX,
        "metadata": {"note\ufffd": "a\ufffdb", "s": "\ufffd"},
    }
    assert (row["ts"], row["day"]) == (DAY1 + 5, "2026-01-01")
    # A call time that has no UTC day is stored as the time the row was made.
    stamped = rows["timeless-0"]
    assert abs(stamped["ts"] - time.time()) < 60
    assert stamped["day"] == datetime.fromtimestamp(stamped["ts"], timezone.utc).date().isoformat()


def test_a_row_the_database_refuses_is_set_aside_and_later_rows_are_written(ledger_url: str, spool_path: Path) -> None:
    _refuse_user(ledger_url, REFUSED)
    first, later = many(10, prefix="first"), many(10, prefix="later", start=DAY1 + 3600)
    first[4].user = REFUSED
    writer = LedgerWriter(ledger_url, spool_path=spool_path, batch_size=500, flush_interval_s=60)
    for record in first:
        writer.submit(record)
    assert writer.flush(10)
    for record in later:
        writer.submit(record)
    writer.close(10)

    written = {row["call_key"] for row in _export(ledger_url)}
    assert written == {r.response_id for r in first + later} - {"first-4"}
    assert (writer.rows_written, writer.rows_spooled, writer.rows_dead_lettered, writer.faults) == (19, 0, 1, 1)
    assert not spool_path.exists()
    [letter] = _dead_letters(writer)
    assert letter["error"] == ("IntegrityError" if ledger_url.startswith("sqlite") else "CheckViolation")
    assert "refuse" in letter["message"]
    assert letter["row"] == _as_dead_letter_row(first[4])
    assert set(letter) == {"at", "error", "message", "row"}
    assert writer.dead_letter_path == spool_path.with_name("spool.dead-letters.jsonl")

    # The same records again (a replay, another process): nothing is written twice.
    with LedgerWriter(ledger_url, spool_path=spool_path) as again:
        for record in first + later:
            again.submit(record)
    assert (again.rows_written, again.rows_dead_lettered) == (0, 1)
    assert len(_export(ledger_url)) == 19


def test_a_user_id_too_long_for_a_postgres_index_is_set_aside_not_an_outage(ledger_url: str, spool_path: Path) -> None:
    """PostgreSQL refuses a btree entry over 2704 bytes (ProgramLimitExceeded, an OperationalError
    like a lost connection): a row error all the same, or that one row would block every later one."""
    records = many(3)
    records[1].user = secrets.token_hex(2000)  # 4000 characters that do not compress
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in records:
            writer.submit(record)
    written = {row["call_key"] for row in _export(ledger_url)}
    if ledger_url.startswith("sqlite"):  # SQLite has no such limit
        assert (written, writer.rows_dead_lettered) == ({"r-0", "r-1", "r-2"}, 0)
        return
    assert written == {"r-0", "r-2"}
    [letter] = _dead_letters(writer)
    assert (letter["error"], letter["row"]["call_key"]) == ("ProgramLimitExceeded", "r-1")
    assert (writer.rows_written, writer.rows_spooled, writer.rows_dead_lettered) == (2, 0, 1)


def _spool_line(values: Sequence[Any]) -> bytes:
    return (json.dumps(list(values), separators=(",", ":")) + "\n").encode()


def test_spool_replay_sets_aside_what_it_cannot_store_and_carries_on(sqlite_url: str, spool_path: Path) -> None:
    _refuse_user(sqlite_url, REFUSED)
    maker = RowMaker()
    good_a, old, refused, good_b, new = many(5, prefix="spooled")
    refused.user = REFUSED
    old_values = list(maker.row(old))
    old_values[COLUMNS.index("input_tokens")] = 10**19  # what an older version spooled, and never wrote
    spool_path.write_bytes(
        _spool_line(maker.row(good_a))
        + _spool_line(old_values)
        + _spool_line(maker.row(refused))
        + b'["torn",1\n'
        + b"\xff\xfe not utf-8\n"
        + _spool_line(maker.row(good_b))
    )
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, flush_interval_s=0.05)
    writer.submit(new)
    writer.close(10)

    rows = {row["call_key"]: row for row in _export(sqlite_url)}
    assert set(rows) == {"spooled-0", "spooled-1", "spooled-3", "spooled-4"}
    assert rows["spooled-1"]["input_tokens"] == INT64_MAX
    assert spool_path.stat().st_size == 0
    letters = _dead_letters(writer)
    assert [(x["error"], x.get("line")) for x in letters] == [
        ("IntegrityError", None),
        ("JSONDecodeError", '["torn",1'),
        ("UnicodeDecodeError", "\\xff\\xfe not utf-8"),
    ]
    assert letters[0]["row"] == _as_dead_letter_row(refused)
    assert (writer.rows_written, writer.rows_dead_lettered, writer.faults) == (4, 3, 3)


def test_a_replay_cut_short_keeps_exactly_the_lines_not_yet_handled(spool_path: Path) -> None:
    rows: list[Row] = [RowMaker().row(record) for record in many(6)]
    spool = Spool(spool_path)
    spool.append(rows[:2])
    with spool_path.open("ab") as handle:
        handle.write(b"not a row\n")
    spool.append(rows[2:])
    rejected: list[str] = []
    written: list[Row] = []

    def failing(batch: Sequence[Row]) -> None:
        if batch[0] == rows[2]:  # the database fails after storing the first row of this batch
            written.append(batch[0])
            raise PartialWrite(1, OSError("connection lost"))
        written.extend(batch)

    with pytest.raises(PartialWrite):
        spool.replay(failing, batch_size=2, reject=lambda line, error: rejected.append(line))
    assert written == rows[:3]
    assert rejected == ["not a row"]
    assert spool_path.read_bytes() == b"".join(_spool_line(row) for row in rows[3:])

    def working(batch: Sequence[Row]) -> None:
        written.extend(batch)

    assert spool.replay(working, batch_size=2, reject=lambda line, error: rejected.append(line)) == 3
    assert written == rows
    assert rejected == ["not a row"]
    assert spool_path.stat().st_size == 0


def test_logs_name_counts_and_error_types_never_row_contents(
    sqlite_url: str, spool_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_user = "alice.secret@example.com"
    _refuse_user(sqlite_url, secret_user)
    records = many(5)
    records[1].user = secret_user
    records[2].input_tokens = "lots-of-secret-tokens"  # type: ignore[assignment]
    caplog.set_level(logging.DEBUG, logger="genai_meter")
    with LedgerWriter(sqlite_url, spool_path=spool_path) as writer:
        for record in records:
            writer.submit(record)
    logged = caplog.text
    assert "secret" not in logged
    assert "IntegrityError" in logged and "ValueError" in logged
    assert "r-0" not in logged and "u0" not in logged
    assert (writer.rows_written, writer.rows_dead_lettered, writer.faults) == (3, 1, 2)


def test_database_lost_in_the_middle_of_a_row_by_row_retry_loses_and_doubles_nothing(
    pg_url: str, pg_schema: str, spool_path: Path
) -> None:
    """Spooled rows replayed one by one (one is refused); the connection dies at a later one. The
    rows replayed so far stay written, the refused one is set aside once, and the new batch that
    was waiting behind the replay is spooled whole, then written."""
    _refuse_user(pg_url, REFUSED)
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        conn.execute("CREATE SEQUENCE kill_once")
        conn.execute(
            """CREATE FUNCTION kill_once() RETURNS trigger AS $$ BEGIN
                 IF NEW.user_id = 'kill' AND nextval('kill_once') = 1 THEN  -- a sequence is not rolled back
                   PERFORM pg_terminate_backend(pg_backend_pid());
                 END IF;
                 RETURN NEW;
               END $$ LANGUAGE plpgsql"""
        )
        conn.execute(
            "CREATE TRIGGER kill_once BEFORE INSERT ON genai_meter_calls FOR EACH ROW EXECUTE FUNCTION kill_once()"
        )
    spooled = many(5, prefix="spooled")
    spooled[1].user, spooled[3].user = REFUSED, "kill"
    Spool(spool_path).append([RowMaker().row(record) for record in spooled])
    new = many(10, prefix="new", start=DAY1 + 3600)

    writer = LedgerWriter(pg_url, spool_path=spool_path, flush_interval_s=60)
    for record in new:
        writer.submit(record)
    assert writer.flush(10)
    assert {row["call_key"] for row in _export(pg_url)} == {"spooled-0", "spooled-2"}
    assert writer.rows_spooled == 10
    writer.close(10)

    assert {row["call_key"] for row in _export(pg_url)} == {f"spooled-{i}" for i in (0, 2, 3, 4)} | {
        f"new-{i}" for i in range(10)
    }
    assert [letter["row"]["call_key"] for letter in _dead_letters(writer)] == ["spooled-1"]
    assert (writer.rows_written, writer.rows_dead_lettered) == (14, 1)
    assert spool_path.stat().st_size == 0


def test_set_aside_rows_are_counted_in_the_exported_metrics(
    telemetry: Telemetry, fake_provider: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A row the database refuses on its own is `genai_meter_ledger_dead_lettered_total`, beside the
    rows written: the operator sees that rows were set aside without reading the ledger's logs."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the spool and dead letters go here
    _refuse_user(sqlite_url, REFUSED)
    configure(**fake_provider_settings(fake_provider, ledger_url=sqlite_url))
    ledger = get_runtime().ledger
    assert ledger is not None
    sdk = client(fake_provider)
    for user in ("u1", REFUSED, "u2"):
        with genai_meter.attribute(user=user):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    assert ledger.flush(10)
    assert telemetry.total(names.LEDGER_ROWS.otel_name) == 2
    assert telemetry.total(names.LEDGER_DEAD_LETTERED.otel_name) == 1
    assert telemetry.total(names.LEDGER_SPOOLED.otel_name) == 0


def test_only_the_rows_own_errors_set_rows_aside() -> None:
    """A value the database or Python refuses is the rows' fault (retried one by one, set aside);
    anything else, a bug included, keeps them in the spool, replayed once it is fixed."""
    from genai_meter.ledger._backend import is_outage

    rows_fault = [sqlite3.IntegrityError(), sqlite3.DataError(), OverflowError(), TypeError(), ValueError()]
    outages = [sqlite3.OperationalError("database is locked"), OSError(), AttributeError(), RuntimeError()]
    assert [is_outage(error) for error in rows_fault] == [False] * len(rows_fault)
    assert [is_outage(error) for error in outages] == [True] * len(outages)
