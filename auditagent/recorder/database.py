"""The writer's connections: connect lazily, write one batch, and give up on a write in time.

A job process holds no connection until it has records to write. A write that has not
committed by its deadline is *abandoned*, not cancelled (psycopg's cancel of a hung server
waits up to 10 s more): it keeps, and finally closes, its own connection, and is cancelled
after ``db_timeout`` if the server has still not answered. Its batch goes to the spool, which
replays idempotently, so a late commit stores nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import psycopg

from ..store.partitions import GROWING_TABLES
from .batch import Batch
from .ingest import write_batch

log = logging.getLogger("auditagent.recorder")


class Database:
    """Connections to one database for one writer, and the writes it stopped waiting for."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._orphans: set[asyncio.Task[Any]] = set()

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                self.url,
                connect_timeout=max(1, int(self.timeout)),
                prepare_threshold=None,
                application_name="auditagent-recorder",
            ),
            self.timeout,
        )

    def abandon(self, task: asyncio.Task[Any]) -> None:
        """Stop waiting for ``task`` without cancelling it now: it keeps (and finally closes)
        its connection, and is cancelled after db_timeout if the server has not answered."""
        self._orphans.add(task)
        handle = asyncio.get_running_loop().call_later(self.timeout, task.cancel)

        def done(t: asyncio.Task[Any]) -> None:
            handle.cancel()
            self._orphans.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: an abandoned write's failure is expected

        task.add_done_callback(done)

    async def stop_abandoned(self) -> None:
        """At close: cancel the writes still running that nobody waits for."""
        for task in list(self._orphans):
            task.cancel()
        if self._orphans:
            await asyncio.wait(set(self._orphans), timeout=1.0)


async def write_on(
    conn: psycopg.AsyncConnection[Any], batch: Batch, *, idempotent: bool, copy_data: bytes
) -> set[uuid.UUID]:
    """One batch in one transaction on ``conn``; the sessions whose close it applied."""
    try:
        return await write_batch(
            conn,
            opens=batch.opens,
            envelopes=batch.envelopes,
            updates=batch.updates,
            index=batch.index,
            idempotent=idempotent,
            copy_data=copy_data,
            audio=batch.audio,
        )
    except BaseException:
        # After an error or a cancel the connection's state is unknown: start over.
        await close_quietly(conn)
        raise


async def close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(conn.close(), 1.0)


MONTHS_EVERY_S = 3600.0
MONTHS_AHEAD = 2


class MonthsAhead:
    """The writer's share of keeping month partitions ahead of time (the retention job does
    it too): at most once an hour, on an idle tick, on the connection the writer already
    holds — never on the hook path, never delaying a batch by more than the lock wait."""

    def __init__(self) -> None:
        self._last: float | None = None

    async def maybe(self, conn: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < MONTHS_EVERY_S:
            return
        self._last = now
        try:
            async with conn.transaction():
                # Creating a partition locks ``events``; writers queue behind that lock, so
                # this one gives up quickly (the default partition catches any late month).
                await conn.execute("SET LOCAL lock_timeout = '200ms'")
                for table in GROWING_TABLES:
                    # A SECURITY DEFINER function (migration 0016): the recorder's role does
                    # not own the tables, so it could not create a partition itself.
                    await conn.execute(
                        "SELECT auditagent_ensure_months(%s, %s)", (table, MONTHS_AHEAD)
                    )
        except psycopg.Error as exc:
            log.info("months ahead not created this time (%s)", type(exc).__name__)


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a failure by type and place only: exception messages can quote record content."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
    log.error("%s: %s at %s", what, type(exc).__name__, where)
