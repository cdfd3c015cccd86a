"""Monthly partitions of the tables that grow with calls (issue 16; groundwork).

Each such table is range-partitioned on ``session_started_at`` — the start of the session a row
belongs to, copied onto every row, so one session never straddles two partitions and a month
can go as a whole once every session that started in it is expired. One partition per UTC
month, ``<table>_pYYYYMM``, and ``<table>_default`` for rows outside every month created.

Months are created ahead of time by maintenance work (the retention job, a writer's idle
tick), never on the hook path. A month whose range already has rows in the default partition is
not created: moving them would be a delete from an append-only table, which only the purge path
may do; they stay in the default partition and are purged per session like any other.

``events`` is partitioned by migration 0016, ``audio_chunks`` and ``search_index`` by 0018; the
month drop is ``store/month_drop.py``; see docs/scale.md. Tables join by being listed in
``GROWING_TABLES`` (their own migration partitions them the same way).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, text

GROWING_TABLES: tuple[str, ...] = ("events", "audio_chunks", "search_index")
"""Per-session tables partitioned by month of the session's start (``events`` by migration
0016, call audio chunks and search index rows by 0018). ``events`` first: its months are the
ones retention looks at."""

KEY_COLUMN = "session_started_at"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 1970 <= self.year <= 9999):
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def of(cls, at: datetime) -> Month:
        """The UTC month ``at`` falls in (a naive datetime is refused: it names no instant)."""
        if at.tzinfo is None:
            raise ValueError("a month of a naive datetime is ambiguous")
        u = at.astimezone(timezone.utc)
        return cls(u.year, u.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def ahead(self, n: int) -> list[Month]:
        """This month and the ``n`` after it."""
        out = [self]
        for _ in range(n):
            out.append(out[-1].next())
        return out

    @property
    def suffix(self) -> str:
        return f"p{self.year:04d}{self.month:02d}"


def _check(table: str) -> str:
    # Table names are ours (GROWING_TABLES, tests' scratch tables), never user input; checked
    # anyway because they are spliced into DDL, which takes no bind parameters.
    if not _IDENT.match(table):
        raise ValueError(f"not a table name this module handles: {table!r}")
    return table


def partition_name(table: str, month: Month) -> str:
    return f"{_check(table)}_{month.suffix}"


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is a month or default partition of a table of ``GROWING_TABLES``."""
    return any(re.fullmatch(rf"{t}_(p\d{{6}}|default)", name) is not None for t in GROWING_TABLES)


def default_partition(table: str) -> str:
    return f"{_check(table)}_default"


def _literal(at: datetime) -> str:
    # Built from integers by Month, so no quoting issue; DDL bounds cannot be bind parameters.
    return f"'{at.strftime('%Y-%m-%d %H:%M:%S')}+00'"


def months_present(conn: Connection, table: str) -> list[Month]:
    """The month partitions ``table`` has, oldest first (by name: ``<table>_pYYYYMM``)."""
    pattern = re.compile(rf"^{re.escape(_check(table))}_p(\d{{4}})(\d{{2}})$")
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).scalars()
    out = []
    for name in rows:
        m = pattern.match(name)
        if m:
            out.append(Month(int(m.group(1)), int(m.group(2))))
    return sorted(out)


def create_partitioned_ddl(table: str) -> list[str]:
    """The default partition of a table already declared ``PARTITION BY RANGE
    (session_started_at)``; a migration runs this once per table."""
    t = _check(table)
    return [
        f"CREATE TABLE {default_partition(t)} PARTITION OF {t} DEFAULT",
        _no_truncate(default_partition(t)),
    ]


def _no_truncate(name: str) -> str:
    # A statement trigger on the parent does not fire for a TRUNCATE of one partition (row
    # triggers are cloned onto partitions, statement triggers on TRUNCATE are not).
    return (
        f"CREATE OR REPLACE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
        "FOR EACH STATEMENT EXECUTE FUNCTION auditagent_append_only()"
    )


def ensure_months(conn: Connection, table: str, months: Iterable[Month]) -> list[Month]:
    """Create the month partitions of ``table`` that are missing; returns those created.

    Runs in the caller's transaction. A month whose range already has rows in the default
    partition is skipped (see the module's docstring) and left out of the result."""
    t = _check(table)
    have = set(months_present(conn, t))
    created = []
    for m in sorted(set(months) - have):
        stray = conn.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {default_partition(t)} "
                f"WHERE {KEY_COLUMN} >= :s AND {KEY_COLUMN} < :e)"
            ),
            {"s": m.start, "e": m.end},
        ).scalar_one()
        if stray:
            continue
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {partition_name(t, m)} PARTITION OF {t} "
                f"FOR VALUES FROM ({_literal(m.start)}) TO ({_literal(m.end)})"
            )
        )
        conn.execute(text(_no_truncate(partition_name(t, m))))
        created.append(m)
    return created


def detach_month(conn: Connection, table: str, month: Month) -> str:
    """Detach ``table``'s partition for ``month`` (it stays, as a table of its own, until
    :func:`drop_detached`); returns its name. The caller has written every deletion record
    the month's sessions need first, in a committed transaction."""
    name = partition_name(table, month)
    conn.execute(text(f"ALTER TABLE {_check(table)} DETACH PARTITION {name}"))
    return name


def drop_detached(conn: Connection, name: str) -> None:
    """Drop a partition :func:`detach_month` detached (refuses one still attached)."""
    attached = conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(:n))"),
        {"n": _check(name)},
    ).scalar_one()
    if attached:
        raise ValueError(f"{name} is still a partition: detach it first")
    conn.execute(text(f"DROP TABLE {name}"))
