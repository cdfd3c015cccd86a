"""Back from the spool: replay spooled batches once the database answers again.

While the database is down, slow or gone, every batch goes to the spool (:class:`Route`); once
one has, every later batch follows it there until a replay has drained the spool, so a
session's rows reach the database in the order they were sealed. The :class:`Replayer`
replays spool files no live writer holds (ours, or a crashed process's), oldest first, on a
connection of its own, in chunks of ``REPLAY_CHUNK`` records, each its own idempotent
transaction (``ON CONFLICT DO NOTHING``): a batch committed by an abandoned write, or a crash
between commit and unlink, stores nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ..metrics import metrics
from .batch import Batch, copy_stream
from .database import Database, close_quietly, write_on
from .spool import FrameReader, Spool

log = logging.getLogger("auditagent.recorder")

LOOP_SLICE_S = 0.0005
"""Work done between two yields to the voice loop (sealing, parsing a spool file)."""
REPLAY_CHUNK = 500
"""Records per replay transaction; also bounds what one step of the loop allocates and frees."""


class Route:
    """Where batches go: the database, or (``spooling``) the spool until a replay drained it."""

    def __init__(self, spool_dir: Path) -> None:
        self._spool_dir = spool_dir
        self.down_since: float | None = None
        self.next_try = 0.0
        self.busy = 0
        """Spool writes under way: a replay must not call the spool empty meanwhile."""
        self.pending: list[Batch] = []
        """Batches kept in memory because even the spool failed."""

    def spooling(self) -> bool:
        return self.down_since is not None

    def divert(self) -> None:
        """A batch is going to the spool: later batches must queue behind it."""
        if self.down_since is None:
            self.down_since = time.monotonic()

    def mark_down(self, exc: BaseException) -> None:
        if self.down_since is None:
            log.warning(
                "database write failed or too slow (%s); spooling to %s",
                type(exc).__name__,
                self._spool_dir,
            )
            self.down_since = time.monotonic()
        self.next_try = time.monotonic() + 1.0

    def due(self) -> bool:
        """Whether it is time for another recovery attempt."""
        return time.monotonic() >= self.next_try


class Replayer:
    """Replays the spool in a task of its own; one at a time."""

    def __init__(
        self,
        *,
        spool: Spool,
        route: Route,
        database: Database,
        on_committed: Callable[[Batch, set[uuid.UUID]], None],
    ) -> None:
        self._spool = spool
        self._route = route
        self._db = database
        self._on_committed = on_committed
        self._task: asyncio.Task[None] | None = None
        self._lent = False
        """The connection is held by a chunk write nobody waits for: it closes it itself."""

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._route.next_try = time.monotonic() + 1.0
        self._task = asyncio.get_running_loop().create_task(self._run(), name="auditagent-replay")

    async def finish(self, timeout: float) -> None:
        """At close: let a running replay end, at most ``timeout`` seconds. While spooling, one
        last replay first: a write that was only too slow (a loaded database) must not leave a
        graceful close's records in the spool for a next process that may never come."""
        if self._route.spooling() and not self._route.pending:
            self.start()
        if self._task is None or self._task.done():
            return
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            self._task.cancel()
            # Let it hand a chunk in flight over to the database's abandoned writes before the
            # caller stops those (nothing on the cancel path waits on the network for long).
            await asyncio.wait({self._task}, timeout=2.0)

    async def _run(self) -> None:
        """Replay until the spool is empty; while spooling, also this writer's own file —
        then the writer writes directly again."""
        spool, route = self._spool, self._route
        conn: psycopg.AsyncConnection[Any] | None = None
        m = metrics()
        self._lent = False
        try:
            conn = await self._db.connect()
            await asyncio.wait_for(conn.execute("SELECT 1"), self._db.timeout)
            await conn.rollback()
            if route.spooling():
                log.warning("database reachable again; replaying the spool")
            while True:
                if route.spooling():
                    # Our own file must be closed before it can be claimed; never while a
                    # spool write is running in its thread.
                    while route.busy:
                        await asyncio.sleep(0.005)
                    spool.seal_active()
                for path, _fd in spool.claim():
                    if not await self._replay_file(conn, path):
                        conn = None  # closed, or still held by the abandoned write
                        return
                m.spool_depth.set(await asyncio.to_thread(spool.depth_files))
                if not route.spooling():
                    return
                if spool.has_active or route.busy or route.pending:
                    continue  # batches spooled while we replayed: those too, first
                # Nothing left behind us: later batches may go straight to the database.
                route.down_since = None
                return
        except Exception as exc:
            if route.spooling():
                route.mark_down(exc)
            else:
                log.warning("spool replay failed (%s); will retry", type(exc).__name__)
        finally:
            # Closing a connection a chunk write still waits on would hand its socket's number
            # to the next file opened while psycopg still polls it.
            if conn is not None and not self._lent:
                await close_quietly(conn)

    async def _replay_file(self, conn: psycopg.AsyncConnection[Any], path: Path) -> bool:
        """Replay one claimed file in chunks, each its own idempotent transaction; delete it
        when all are committed. False when the database failed (the file stays)."""
        data = await asyncio.to_thread(path.read_bytes)
        reader = FrameReader(data)
        clock = time.perf_counter
        slice_end = clock() + LOOP_SLICE_S
        batch = Batch()
        total = 0
        for tag, payload in reader:
            batch.add_frame(tag, payload)
            if len(batch.envelopes) >= REPLAY_CHUNK:
                if not await self._replay_chunk(conn, batch):
                    return False
                total += len(batch.envelopes)
                batch = Batch()
                slice_end = clock() + LOOP_SLICE_S
            elif clock() > slice_end:
                await asyncio.sleep(0)
                slice_end = clock() + LOOP_SLICE_S
        if reader.torn_bytes:
            log.warning(
                "spool file %s ends in %d torn bytes (a write cut short before it was "
                "acknowledged)",
                path.name,
                reader.torn_bytes,
            )
        if batch and not await self._replay_chunk(conn, batch):
            return False
        total += len(batch.envelopes)
        await asyncio.to_thread(self._spool.done, path)  # unlink + directory fsync
        log.info("replayed %d records from %s", total, path.name)
        return True

    async def _replay_chunk(self, conn: psycopg.AsyncConnection[Any], batch: Batch) -> bool:
        """Write one chunk idempotently; False (connection given up) when it failed or did
        not commit within db_timeout — the file stays for the next attempt."""
        data = await copy_stream(batch.envelopes, batch.started)
        chunk = _Chunk()
        task = asyncio.get_running_loop().create_task(_write_chunk(conn, batch, data, chunk))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._db.timeout)
        except asyncio.CancelledError:
            # The replay is stopped (the recorder closes) with a chunk in flight: the write
            # keeps its connection, its outcome is still observed, and the file stays.
            self._give_up(task, chunk)
            raise
        if not done:
            # As for a direct write: never wait on a cancel; the task closes the connection.
            self._give_up(task, chunk)
            self._route.mark_down(TimeoutError())
            return False
        exc = task.exception()
        if exc is not None:
            self._route.mark_down(exc)
            return False
        metrics().records_replayed.inc(len(batch.envelopes))
        self._on_committed(batch, task.result())
        return True

    def _give_up(self, task: asyncio.Task[set[uuid.UUID]], chunk: _Chunk) -> None:
        chunk.abandoned = True
        self._lent = True
        self._db.abandon(task)


class _Chunk:
    abandoned = False


async def _write_chunk(
    conn: psycopg.AsyncConnection[Any], batch: Batch, data: bytes, chunk: _Chunk
) -> set[uuid.UUID]:
    """One idempotent chunk write; when nobody waits for it any more it closes the
    connection it was lent (on failure ``write_on`` already has)."""
    closed = await write_on(conn, batch, idempotent=True, copy_data=data)
    if chunk.abandoned:
        await close_quietly(conn)
    return closed
