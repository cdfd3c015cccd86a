"""Monthly partition helpers on a scratch table partitioned like the growing tables will be
(``PARTITION BY RANGE (session_started_at)``), in the run's real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import Connection, text

from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import partitions as p


def test_months_are_utc_calendar_months() -> None:
    dec = p.Month.of(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc))
    assert dec == p.Month(2026, 12)
    assert dec.next() == p.Month(2027, 1)
    assert dec.end == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert [m.suffix for m in dec.ahead(2)] == ["p202612", "p202701", "p202702"]
    with pytest.raises(ValueError, match="naive"):
        p.Month.of(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not a table name"):
        p.partition_name("events; DROP TABLE sessions", dec)


@pytest.fixture
def scratch(settings: Settings) -> Iterator[tuple[Connection, str]]:
    engine = db.make_engine(settings)
    table = f"scratch_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {table} (session_id uuid NOT NULL, seq int NOT NULL, "
                "session_started_at timestamptz NOT NULL, "
                "PRIMARY KEY (session_id, seq, session_started_at)) "
                "PARTITION BY RANGE (session_started_at)"
            )
        )
        for ddl in p.create_partitioned_ddl(table):
            conn.execute(text(ddl))
        conn.commit()
        try:
            yield conn, table
        finally:
            conn.rollback()
            conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
            for name in conn.execute(
                text("SELECT relname FROM pg_class WHERE relname LIKE :t AND relkind = 'r'"),
                {"t": f"{table}_p%"},
            ).scalars():
                conn.execute(text(f"DROP TABLE {name}"))
            conn.commit()
    engine.dispose()


def _insert(conn: Connection, table: str, started: datetime, n: int) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(
        text(f"INSERT INTO {table} SELECT :s, g, :at FROM generate_series(0, :n - 1) g"),
        {"s": sid, "at": started, "n": n},
    )
    return sid


def _where(conn: Connection, table: str, sid: uuid.UUID) -> set[str]:
    return set(
        conn.execute(
            text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE session_id = :s"),
            {"s": sid},
        ).scalars()
    )


def test_months_created_ahead_take_their_rows_and_the_default_takes_the_rest(
    scratch: tuple[Connection, str],
) -> None:
    conn, table = scratch
    nov = p.Month(2026, 11)
    assert p.ensure_months(conn, table, nov.ahead(2)) == nov.ahead(2)
    assert p.ensure_months(conn, table, nov.ahead(2)) == []  # idempotent
    assert p.months_present(conn, table) == nov.ahead(2)
    # A session that starts on the last instant of November stays in November, whole.
    late = _insert(conn, table, datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc), 5)
    jan = _insert(conn, table, datetime(2027, 1, 1, tzinfo=timezone.utc), 3)
    stray = _insert(conn, table, datetime(2031, 5, 1, tzinfo=timezone.utc), 2)
    assert _where(conn, table, late) == {f"{table}_p202611"}
    assert _where(conn, table, jan) == {f"{table}_p202701"}
    assert _where(conn, table, stray) == {f"{table}_default"}
    # May 2031 has rows in the default partition: it is not created (moving them would be a
    # delete from an append-only table); the months around it are.
    may31 = p.Month(2031, 5)
    assert p.ensure_months(conn, table, [p.Month(2031, 4), may31]) == [p.Month(2031, 4)]
    assert may31 not in p.months_present(conn, table)


def test_a_month_goes_whole_by_detach_then_drop(scratch: tuple[Connection, str]) -> None:
    conn, table = scratch
    oct_, nov = p.Month(2026, 10), p.Month(2026, 11)
    p.ensure_months(conn, table, [oct_, nov])
    old = [_insert(conn, table, datetime(2026, 10, d, tzinfo=timezone.utc), 100) for d in (1, 31)]
    keep = _insert(conn, table, datetime(2026, 11, 1, tzinfo=timezone.utc), 10)
    conn.commit()
    name = p.detach_month(conn, table, oct_)
    with pytest.raises(ValueError, match="still a partition"):
        p.drop_detached(conn, f"{table}_p202611")
    p.drop_detached(conn, name)
    conn.commit()
    for sid in old:
        assert _where(conn, table, sid) == set()
    assert _where(conn, table, keep) == {f"{table}_p202611"}
    assert p.months_present(conn, table) == [nov]
