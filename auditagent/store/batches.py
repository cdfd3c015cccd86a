"""Statements sent to Postgres together, for the review API's per-request work.

Every API read pays for its round trips (authentication, the session row, the access-log
commit, the data key and the records), and on a loaded box each one is a context switch to a
Postgres backend and back. Through SQLAlchemy a transaction is also a BEGIN and a COMMIT of
its own; here a batch is one simple-protocol query (psycopg's ``ClientCursor`` binds the
parameters client-side, quoted by the driver), sent in autocommit mode so that the driver
adds no BEGIN/COMMIT: a batch that needs a transaction spells it out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["Batch", "on_driver"]

Params = Sequence[Any] | Mapping[str, Any] | None


class Batch:
    """The request connection's driver connection in autocommit mode (see :func:`on_driver`)."""

    __slots__ = ("_dbapi",)

    def __init__(self, dbapi: psycopg.Connection[Any]) -> None:
        self._dbapi = dbapi

    def run(
        self, sql: str, params: Params = None, *, named: bool | Collection[int] = False
    ) -> list[list[Any]]:
        """Send ``sql`` (one or more statements separated by ``;``) in one round trip; the
        rows of each statement in order (``[]`` for one that returns none), as tuples or, for
        the statements ``named`` (True: all; else their indexes), as named tuples (attribute
        access, like SQLAlchemy's rows)."""
        cur: psycopg.ClientCursor[Any] = psycopg.ClientCursor(self._dbapi, row_factory=tuple_row)
        try:
            cur.execute(sql, params)
            out: list[list[Any]] = []
            while True:
                if cur.description is None:
                    out.append([])
                else:
                    if named is True or (named is not False and len(out) in named):
                        cur.row_factory = namedtuple_row
                    out.append(cur.fetchall())
                    cur.row_factory = tuple_row
                if not cur.nextset():
                    return out
        finally:
            cur.close()

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """One statement's rows, in one round trip (server-side binding)."""
        with self._dbapi.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()


@contextmanager
def on_driver(conn: Connection) -> Iterator[Batch]:
    """Batches on ``conn``'s own driver connection, which is left as SQLAlchemy expects it:
    idle, out of autocommit. Whatever ``conn`` had begun (reads only, by contract) is rolled
    back first; a transaction a batch left open (it failed half-way) is rolled back after.
    Driver errors come out as SQLAlchemy's (``DBAPIError`` and its subclasses), as they would
    through ``conn.execute``, and a connection they broke is invalidated, not pooled again."""
    if conn.in_transaction():
        conn.rollback()
    dbapi: psycopg.Connection[Any] = conn.connection.dbapi_connection  # type: ignore[assignment]
    dbapi.autocommit = True
    try:
        yield Batch(dbapi)
    except psycopg.Error as exc:
        broken = dbapi.closed or dbapi.broken
        if broken:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=broken
        ) from exc
    finally:
        _restore(conn, dbapi)


def _restore(conn: Connection, dbapi: psycopg.Connection[Any]) -> None:
    if dbapi.closed or dbapi.broken:
        return
    try:
        if dbapi.info.transaction_status != pq.TransactionStatus.IDLE:
            dbapi.rollback()
        dbapi.autocommit = False
    except psycopg.Error as exc:
        # Left in a state SQLAlchemy does not expect: not to be pooled again.
        conn.invalidate(exc)
