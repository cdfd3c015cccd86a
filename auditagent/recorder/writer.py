"""The writer task: queue → batches → sealed, chained envelopes → database or spool.

It runs on the voice loop's event loop, so it gives the loop back every ``LOOP_SLICE_S`` of
work and never waits on the database for longer than a batch's durability window allows.

Durability: every batch is durable — committed, or fsynced to the spool — within
``durable_within`` of the moment its oldest record was handed over, whatever the database
does. A direct write gets what is left of that window (minus a margin for the spool's fsync);
when it has not committed by then it is abandoned (database.py) and the batch goes to the spool
(recovery.py says when batches may go straight to the database again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from ..metrics import metrics
from ..settings import Settings
from .batch import Batch, copy_stream, spool_stream
from .database import Database, MonthsAhead, close_quietly, log_failure, write_on
from .guarantee import Guarantee
from .ingest import SessionUpdate
from .intake import Inbox
from .recovery import LOOP_SLICE_S, Replayer, Route
from .sealing import SessionSealing
from .spool import Spool

if TYPE_CHECKING:
    from ..integrity.checkpoints import ClosedSessionHead

log = logging.getLogger("auditagent.recorder")

SPOOL_MARGIN_S = 0.2
"""Kept out of a direct write's time budget: encoding and fsyncing the batch to the spool."""
MIN_WRITE_S = 0.1
IDLE_DISCONNECT_S = 5.0


@dataclass
class _InFlight:
    """The direct write in flight: its batch, task, connection and deadline (loop time)."""

    batch: Batch
    deadline: float
    started: float
    task: asyncio.Task[set[uuid.UUID]] | None = None
    conn: psycopg.AsyncConnection[Any] | None = None
    abandoned: bool = False


class Writer:
    """One recorder's queue consumer: the only code that seals, chains and stores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inbox = Inbox(
            maxlen=settings.queue_size, wake_at=settings.batch_size, wake=self.wake_soon
        )
        self._sessions: dict[uuid.UUID, SessionSealing] = {}
        self._route = Route(settings.resolved_spool_dir)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._db: Database | None = None
        self._spool: Spool | None = None
        self._replayer: Replayer | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._inflight: _InFlight | None = None
        self._on_sessions_closed: Callable[[Sequence[ClosedSessionHead]], None] | None = None
        self._checkpoint_tasks: set[asyncio.Task[None]] = set()
        self._last_write, self._months = 0.0, MonthsAhead()
        self._flush_waiters: list[asyncio.Future[None]] = []
        self.guarantee = Guarantee(settings)

    # -- the recorder's side ---------------------------------------------------------------
    def start(
        self,
        *,
        url: str,
        db_down: bool,
        on_sessions_closed: Callable[[Sequence[ClosedSessionHead]], None] | None,
    ) -> None:
        self._spool = Spool(self.settings.resolved_spool_dir)
        self._db = Database(url, timeout=self.settings.db_timeout)
        self._replayer = Replayer(
            spool=self._spool, route=self._route, database=self._db, on_committed=self._committed
        )
        self._on_sessions_closed = on_sessions_closed
        if db_down:
            self._route.divert()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="auditagent-writer")

    def register(self, state: SessionSealing) -> None:
        self._sessions[state.session_id] = state

    def database_down(self) -> bool:
        return self._route.spooling()

    def open_sessions(self) -> list[SessionSealing]:
        return list(self._sessions.values())

    def wake_soon(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def flush(self, timeout: float | None) -> None:
        """Wait until everything queued so far has reached the database or the spool."""
        if self._task is None or self._task.done():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(fut)
        self.wake_soon()
        await asyncio.wait_for(asyncio.shield(fut), timeout)

    async def stop(self) -> None:
        """Drain the queue (sessions' ends included), then release the database and spool."""
        self._stopping = True
        self.wake_soon()
        task = self._task
        if task is None:
            return
        try:
            # Shielded: a cancelled caller must not cancel the writer between a batch leaving
            # the queue and reaching the database or the spool; it finishes on its own.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                raise

    # -- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None and self._replayer is not None
        # Wake at least four times per durability window: a record must not sit in memory
        # longer than a fraction of it, whatever flush_interval says.
        interval = min(self.settings.flush_interval, self.settings.durable_within / 4)
        # Spool files left by crashed processes replay in the background (their sessions are
        # not ours, so nothing orders them against what this writer stores meanwhile).
        self._replayer.start()
        try:
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
                self._wake.clear()
                stopping = self._stopping
                waiters, self._flush_waiters = self._flush_waiters, []
                try:
                    await self._drain()
                    if waiters and self._checkpoint_tasks:
                        await asyncio.wait(set(self._checkpoint_tasks))
                except Exception as exc:  # the writer must outlive any single bad batch
                    log_failure(log, "writer batch failed", exc)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
                if stopping and not self.inbox.queue:
                    break
                await asyncio.sleep(0)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        """At close: settle the write in flight, let a running replay end (bounded), wait for
        checkpoint writes, and stop abandoned writes."""
        assert self._replayer is not None and self._db is not None
        with contextlib.suppress(Exception):
            await self._settle()
        await self._replayer.finish(self.settings.db_timeout)
        if self._checkpoint_tasks:
            await asyncio.wait(set(self._checkpoint_tasks))
        await self._db.stop_abandoned()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await close_quietly(conn)
        if self._spool is not None:
            self._spool.close()
            left = await asyncio.to_thread(self._spool.depth_files)
            if left:
                msg = "%d spool file(s) not replayed yet in %s: durable there; the next recorder"
                log.warning(msg + " started on it replays them", left, self._spool.directory)
        with contextlib.suppress(Exception):  # a no-op unless recording failed somewhere
            self.guarantee.close(self._sessions, self._route.pending)
        if self._route.pending:
            lost = sum(len(b.envelopes) for b in self._route.pending)
            log.error(
                "%d records could neither be written nor spooled; spool dir %s",
                lost,
                self.settings.resolved_spool_dir,
            )

    async def _build_batch(self, limit: int) -> Batch:
        """Translate, encode, seal and chain up to ``limit`` queued events.

        Runs on the voice loop, so it gives the loop back every ``LOOP_SLICE_S`` of work."""
        batch = Batch()
        touched: dict[uuid.UUID, SessionSealing] = {}
        q = self.inbox.queue
        n = 0
        clock = time.perf_counter
        slice_end = clock() + LOOP_SLICE_S
        while q and n < limit:
            state, raw = q.popleft()
            if batch.oldest is None:
                batch.oldest = raw[2]
            if (opened := state.take_open()) is not None:
                batch.opens.append(opened)
            out = state.records_for(raw)
            for r in out:
                batch.envelopes.append(state.seal(r))
                n += 1
            if out and raw[0] == "__audio__":
                batch.audio.append(raw[1].sealed)
            touched[state.session_id] = state
            if clock() > slice_end:
                await asyncio.sleep(0)
                slice_end = clock() + LOOP_SLICE_S
        for state in list(self._sessions.values()):
            gap = state.overflow_gap()
            if gap is not None:
                batch.envelopes.append(state.seal(gap))
                touched[state.session_id] = state
                if batch.oldest is None:
                    batch.oldest = time.time()
        for state in touched.values():
            batch.started[state.session_id] = state.started_at
            batch.updates.append(state.update())
            if (index := state.take_index()) is not None:
                batch.index.append(index)
            if state.closed:
                self._sessions.pop(state.session_id, None)
        return batch

    async def _drain(self) -> None:
        m = metrics()
        route = self._route
        limit = max(self.settings.batch_size, 1)
        while True:
            # Seal the next batch while the previous one is on its way to the database:
            # the client's CPU work overlaps the server's, one write in flight at a time.
            batch = await self._build_batch(limit)
            m.queue_depth.set(len(self.inbox.queue))
            await self._settle()
            if route.pending:
                await self._retry_pending()
            if not batch:
                await self._maintain()
                return
            await self._store(batch)
            if route.spooling() and route.due():
                self._start_replay()  # under steady load there is never an idle moment
            if not self.inbox.queue:
                await self._settle()
                return
            await asyncio.sleep(0)

    def _start_replay(self) -> None:
        self._replayer.start()  # type: ignore[union-attr]

    # -- direct writes -----------------------------------------------------------------------
    def _write_deadline(self, batch: Batch) -> float:
        """Seconds this batch's direct write may take before it is abandoned."""
        oldest = batch.oldest if batch.oldest is not None else time.time()
        left = oldest + self.settings.durable_within - SPOOL_MARGIN_S - time.time()
        return min(max(left, MIN_WRITE_S), self.settings.db_timeout)

    async def _store(self, batch: Batch) -> None:
        if self._route.spooling():
            await self._to_spool(batch)
            return
        data = await copy_stream(batch.envelopes, batch.started)
        loop = asyncio.get_running_loop()
        flight = _InFlight(batch, loop.time() + self._write_deadline(batch), time.perf_counter())
        flight.task = loop.create_task(self._write(flight, data))
        self._inflight = flight

    async def _settle(self) -> None:
        """Wait for the write in flight until its deadline; spool its batch if it failed or is
        still running then (it is left to finish, or fail, on its own)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        assert self._db is not None
        m = metrics()
        task = inflight.task
        assert task is not None
        timeout = max(0.0, inflight.deadline - asyncio.get_running_loop().time())
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            # Cancelled (the loop shuts down): _finish settles it again, so its batch still
            # reaches the database or the spool and its outcome is observed.
            self._inflight = inflight
            raise
        if done:
            exc = task.exception()
            if exc is None:
                self._conn = inflight.conn
                self._last_write = time.monotonic()
                m.flush_seconds.observe(time.perf_counter() - inflight.started)
                m.records_written.inc(len(inflight.batch.envelopes))
                self._committed(inflight.batch, task.result())
                return
            self._conn = None  # closed by the failed write
            self._route.mark_down(exc)
        else:
            inflight.abandoned = True
            self._conn = None
            self._db.abandon(task)
            self._route.mark_down(TimeoutError())
        await self._to_spool(inflight.batch)

    async def _write(self, flight: _InFlight, copy_data: bytes) -> set[uuid.UUID]:
        """One direct write (its own task). Uses the writer's connection, or a new one that
        the writer adopts on success; an abandoned write closes whatever it holds."""
        assert self._db is not None
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._db.connect()
        flight.conn = conn
        closed = await write_on(conn, flight.batch, idempotent=False, copy_data=copy_data)
        if flight.abandoned:
            await close_quietly(conn)
        return closed

    def _committed(self, batch: Batch, closed: set[uuid.UUID]) -> None:
        """Sign a checkpoint for every session whose close this batch committed, in a worker
        thread; ``flush()`` and close wait for it.

        Only on commit, and only for sessions whose row took the close: a session erased while
        its call went on keeps the count its deletion record proves, and records that arrive
        under its destroyed key are cleared by the next retention run, not checkpointed."""
        from ..integrity.checkpoints import ClosedSessionHead

        callback = self._on_sessions_closed
        if callback is None or not closed:
            return
        last: dict[uuid.UUID, SessionUpdate] = {}
        for u in batch.updates:
            if u.session_id in closed and u.event_count >= last.get(u.session_id, u).event_count:
                last[u.session_id] = u
        heads = [ClosedSessionHead(u.session_id, u.event_count, u.head_hash) for u in last.values()]
        if not heads:
            return

        async def run() -> None:
            try:
                await asyncio.to_thread(callback, heads)
            except Exception as exc:
                log.error("on_sessions_closed failed (%s)", type(exc).__name__)

        task = asyncio.get_running_loop().create_task(run())
        self._checkpoint_tasks.add(task)
        task.add_done_callback(self._checkpoint_tasks.discard)

    async def _maintain(self) -> None:
        """Idle work: replay while spooling; release an idle connection; months ahead."""
        if self._route.spooling():
            if self._route.due():
                self._start_replay()
        elif self._conn is not None and time.monotonic() - self._last_write > IDLE_DISCONNECT_S:
            # A thousand idle job processes must not pin a thousand connections.
            conn, self._conn = self._conn, None
            await close_quietly(conn)
        elif self._conn is not None:
            await self._months.maybe(self._conn)

    # -- the spool ---------------------------------------------------------------------------
    async def _to_spool(self, batch: Batch) -> None:
        assert self._spool is not None
        route = self._route
        route.divert()
        # Busy from the first slice of encoding: a replay must not decide the spool is empty
        # (and hand writing back to the database) while this batch is on its way into it.
        route.busy += 1
        try:
            data = await spool_stream(batch)
            await asyncio.to_thread(self._spool.append_encoded, data)
        except OSError as exc:
            log.error("spool write failed (%s); keeping the batch in memory", type(exc).__name__)
            route.pending.append(batch)
            if self.settings.require_recording:
                await self.guarantee.unrecordable(batch, self._sessions)
            return
        finally:
            route.busy -= 1
        metrics().records_spooled.inc(len(batch.envelopes))

    async def _retry_pending(self) -> None:
        pending, self._route.pending = self._route.pending, []
        for b in pending:
            await self._to_spool(b)
