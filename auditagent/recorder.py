"""AuditRecorder: attach to AgentSessions; one writer task seals, chains and stores.

The voice loop only ever appends a tuple to a deque (see :meth:`SessionRecording._put`).
Everything else — translating LiveKit events into records, encoding, sealing, chaining, and the
database round trip — happens in the writer task, which never waits on the database for longer
than ``db_timeout``: a slow or absent database sends the batch to the durable spool instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from . import _lkcompat as lk
from . import crypto, guarantee, records
from .capture import RawEvent, SessionCapture
from .envelope import Envelope, SessionSealer, dek_context
from .errors import AuditagentError, DatabaseUnavailable
from .keys import KeyProvider, load_key_provider
from .metrics import metrics
from .pauses import PauseRule, PauseRules
from .redaction import PolicyLike, Redactor, resolve_policy
from .redaction.step import RedactionStep
from .settings import Settings
from .spool import TAG_ENVELOPE, TAG_SESSION, TAG_UPDATE, FrameReader, Spool, encode_frames
from .store import db
from .store.ingest import (
    COPY_HEADER,
    COPY_TRAILER,
    SessionOpen,
    SessionUpdate,
    encode_copy_rows,
    write_batch,
)

if TYPE_CHECKING:
    from livekit.agents import AgentSession

    from .checkpoints import ClosedSessionHead

log = logging.getLogger("auditagent.recorder")

LOOP_SLICE_S = 0.0005
"""The writer gives the voice loop back after this much work (sealing, encoding); a step is
this plus one record's work, so it stays well under ~2 ms even with a GC pass inside."""
SLICE_ITEMS = 64
"""Rows encoded (COPY stream, spool frames) between two yields to the loop: ~0.2 ms."""
SPOOL_MARGIN_S = 0.2
"""Kept out of a direct write's time budget: encoding and fsyncing the batch to the spool."""
MIN_WRITE_S = 0.1
REPLAY_CHUNK = 500
"""Records per replay transaction; also bounds what one step of the loop allocates and frees."""

_GENESIS = bytes(32)
IDLE_DISCONNECT_S = 5.0
# How long closing waits for LiveKit's own close of a session it is tearing down (or, at job
# shutdown, is about to tear down), so the record carries LiveKit's close reason. A job process
# has 10 s in all (shutdown_process_timeout) to close and flush.
SESSION_CLOSE_WAIT_S = 5.0
# Events with no conversation content, still recorded while a session is paused.
_KEPT_WHILE_PAUSED = frozenset(
    {
        "__record__",
        "close",
        "agent_state_changed",
        "user_state_changed",
        "metrics_collected",
        "session_usage_updated",
    }
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def _write_on(
    conn: psycopg.AsyncConnection[Any], batch: _Batch, *, idempotent: bool, copy_data: bytes
) -> set[uuid.UUID]:
    try:
        return await write_batch(
            conn,
            opens=batch.opens,
            envelopes=batch.envelopes,
            updates=batch.updates,
            idempotent=idempotent,
            copy_data=copy_data,
        )
    except BaseException:
        # After an error or a cancel the connection's state is unknown: start over.
        await _close_quietly(conn)
        raise


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(conn.close(), 1.0)


def _card_fingerprint(kp: KeyProvider, tenant: str) -> Callable[[str], str]:
    """A card number's keyed, tenant-separated fingerprint for its placeholder (policies with
    ``fingerprint=True``): the same card matches across mentions, the number stays unknown."""

    def fingerprint(digits: str) -> str:
        return kp.blind_index(tenant=tenant, value=digits, purpose="card_fingerprint").hex()[:16]

    return fingerprint


def _log_failure(what: str, exc: BaseException) -> None:
    # Type and place only: exception messages can quote record content.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
    log.error("%s: %s at %s", what, type(exc).__name__, where)


class SessionRecording:
    """One recorded conversation. ``session_id`` is the UUID the review API uses."""

    def __init__(
        self,
        recorder: AuditRecorder,
        *,
        tenant: str,
        participant: str | None,
        labels: dict[str, str],
        capture: SessionCapture | None,
        session_id: uuid.UUID | None = None,
        redaction: PolicyLike = None,
    ) -> None:
        if not tenant or len(tenant) > 128:
            raise AuditagentError(
                "tenant must be a non-empty string of at most 128 characters",
                fix="pass tenant='your-tenant' to attach()",
            )
        self.session_id = session_id or uuid.uuid4()
        self.tenant = tenant
        self.labels = dict(labels)
        self.capture = capture
        self._recorder = recorder
        self._participant = participant
        self.key_id = uuid.uuid4().hex
        data_key = crypto.new_data_key()
        self._sealer = SessionSealer(
            crypto.Sealer(data_key), tenant=tenant, session_id=self.session_id, key_id=self.key_id
        )
        kp = recorder.key_provider
        wrapped = kp.wrap(
            data_key,
            context=dek_context(tenant=tenant, session_id=self.session_id, key_id=self.key_id),
        )
        del data_key
        self.redaction = resolve_policy(
            redaction, default=resolve_policy(recorder.settings.redaction)
        )
        self._redaction = RedactionStep(
            Redactor(self.redaction, fingerprint=_card_fingerprint(kp, tenant))
        )
        self._open = SessionOpen(
            session_id=self.session_id,
            tenant=tenant,
            started_at=_utcnow(),
            key_id=self.key_id,
            master_key_id=wrapped.master_key_id,
            wrapped=wrapped.blob,
            agent_name=labels.get("agent"),
            labels=self.labels,
            participant_index=(
                kp.blind_index(tenant=tenant, value=participant) if participant else None
            ),
        )
        self._open_pending = True
        # chain state, owned by the writer task
        self.next_seq = 0
        self.prev_hash = _GENESIS
        self._tools: set[str] = set()
        self._new_tools: list[str] = []
        self._meta_dirty = False
        self.closed = False
        self._closed_at: datetime | None = None
        self._close_reason: str | None = None
        # overflow bookkeeping, touched by the hot path only when the queue is full
        self._overflow = 0
        self._overflow_first: float | None = None
        self._overflow_last: float | None = None
        self._q = recorder._queue
        self._paused = False
        self._paused_since: float | None = None
        self._paused_dropped = 0
        self._pause_details: dict[str, Any] = {}
        self._rules: PauseRules | None = None
        self._notice_task: asyncio.Task[None] | None = None
        self._notice_state: str | None = None  # sessions.notice: incomplete | completed
        self._failed_since: float | None = None  # set: records can be kept nowhere
        self._lost = 0
        self._maxlen = recorder.settings.queue_size
        self._wake_at = recorder.settings.batch_size

    # -- hot path ------------------------------------------------------------------------
    def _put(self, raw: RawEvent) -> None:
        """Called by capture handlers on the voice loop: O(1), no I/O, never raises."""
        if self._failed_since is not None:
            self._lost += 1  # recording failed (require_recording): nothing more is kept
            return
        rules = self._rules
        if rules is not None:
            rules.before(raw)
        if self._paused and raw[0] not in _KEPT_WHILE_PAUSED:
            self._paused_dropped += 1
            return
        q = self._q
        if len(q) < self._maxlen:
            q.append((self, raw))
            if len(q) >= self._wake_at:
                self._recorder._wake_soon()
            if rules is not None:
                rules.after(raw)
        else:
            self._overflow += 1
            if self._overflow_first is None:
                self._overflow_first = raw[2]
            self._overflow_last = raw[2]

    # -- public --------------------------------------------------------------------------
    def add(self, record: records.Record) -> None:
        """Queue a record built by the caller (non-LiveKit sources, consent notices, tests)."""
        self._put(("__record__", record, time.time()))

    def pause(self, *, reason: str) -> None:
        """Stop recording what is said until :meth:`resume` — e.g. while a caller reads out a
        card number or CVV, which PCI DSS 3.3.1 forbids keeping even encrypted.

        The pause itself is recorded (a ``recording_paused`` notice with the reason), events
        carrying content are counted instead of queued, items LiveKit keeps in its history for
        that time are left out of the close-time reconciliation, and :meth:`resume` records how
        many events were not recorded. Timing, state and usage events are still recorded.
        """
        if self._rules is not None and self._rules.active is not None:
            self._rules.drop()  # a manual pause takes over the pause a rule started
            self._pause_details = {"reason": reason}
            return
        if self._paused:
            return
        self._pause(time.time(), reason, {})

    def resume(self) -> None:
        """Record again after :meth:`pause`."""
        if not self._paused:
            return
        if self._rules is not None:
            self._rules.drop()
        self._resume(time.time(), {})

    @contextlib.contextmanager
    def paused(self, *, reason: str) -> Iterator[SessionRecording]:
        """``with rec.paused(reason="card details"):`` — :meth:`pause`, then :meth:`resume`
        however the block ends (an exception inside it no longer leaves the rest of the call
        unrecorded)."""
        self.pause(reason=reason)
        try:
            yield self
        finally:
            self.resume()

    @property
    def is_paused(self) -> bool:
        return self._paused

    def _pause(self, t: float, reason: str, details: dict[str, Any]) -> None:
        self.add(
            records.Notice(
                at=datetime.fromtimestamp(t, timezone.utc),
                code="recording_paused",
                message=reason,
                details=details,
            )
        )
        self._paused, self._paused_since, self._paused_dropped = True, t, 0
        self._pause_details = details
        if self.capture is not None:
            self.capture.pause_at(t)

    def _resume(self, t: float, details: dict[str, Any]) -> None:
        self._paused = False
        if self.capture is not None:
            self.capture.resume_at(t)
        self.add(self._resumed_notice(t, details))

    def _resumed_notice(self, t: float, details: dict[str, Any] | None = None) -> records.Notice:
        since = self._paused_since or t
        extra = {k: v for k, v in self._pause_details.items() if k == "rule"}
        extra.update(details or {})
        expired = extra.get("max_duration_reached") is True
        return records.Notice(
            at=datetime.fromtimestamp(t, timezone.utc),
            code="recording_resumed",
            message=f"{self._paused_dropped} events were not recorded while paused"
            + (" (the rule's maximum duration was reached)" if expired else ""),
            details={
                "events_not_recorded": self._paused_dropped,
                "paused_seconds": t - since,
                **extra,
            },
        )

    def close(self, *, reason: str = "closed", error: str | None = None) -> None:
        """Close a session opened with ``open_session`` (attached sessions close themselves).

        A session has one ``closed`` record, its last: a second close adds nothing.
        """
        self.add(records.Closed(at=_utcnow(), reason=reason, error=error))

    def _end(self) -> None:
        """Queue the session's end as the recorder closes. Past the queue bound and a pause:
        a session must get its ``closed`` record whatever else was dropped."""
        self._q.append((self, ("__close__", None, time.time())))

    # -- writer side ---------------------------------------------------------------------
    def _records_for(self, raw: RawEvent) -> list[records.Record]:
        name, payload, t = raw
        if self.closed:
            # The closed record is the last; LiveKit emits nothing of the conversation after
            # its close event (state changes during teardown at most).
            log.debug("session %s: %s after close not recorded", self.session_id, name)
            return []
        if name == "__record__" and not (payload.kind == "closed" and self.capture is not None):
            return [payload]
        if name == "__close__" or name == "__record__":
            # the recorder closing, or close() on an attached session: reconcile first
            reason = None if name == "__close__" else payload.reason
            error = None if name == "__close__" else payload.error
            if self.capture is None:
                out: list[records.Record] = [
                    records.Closed(
                        at=datetime.fromtimestamp(t, timezone.utc),
                        reason=reason or "recorder_closed",
                        error=error,
                    )
                ]
            else:
                out = self.capture.finish(t, reason=reason, error=error)
        elif self.capture is None:
            return []
        else:
            out = self._translate(raw)
        if self._paused and any(r.kind == "closed" for r in out):
            # closed while paused: say how much was left out before the closing records
            self._paused = False
            return [self._resumed_notice(t), *out]
        return out

    def _redacted(self, recs: list[records.Record]) -> list[records.Record]:
        """The redaction step between translation and sealing (redaction/step.py)."""
        step = self._redaction
        if not step.enabled:
            return recs
        out: list[records.Record] = []
        for r in recs:
            out += step(r)
        return out

    def _translate(self, raw: RawEvent) -> list[records.Record]:
        name, _, t = raw
        assert self.capture is not None
        try:
            return self.capture.translate(raw)
        except Exception as exc:
            # Never the event's content in a log or record: only what kind of failure it was.
            log.warning("could not translate a %s event: %s", name, type(exc).__name__)
            return [
                records.Gap(
                    at=datetime.fromtimestamp(t, timezone.utc),
                    count=1,
                    first_at=datetime.fromtimestamp(t, timezone.utc),
                    last_at=datetime.fromtimestamp(t, timezone.utc),
                    reason=f"event {name} could not be translated ({type(exc).__name__})",
                )
            ]

    def _take_overflow(self) -> records.Gap | None:
        if not self._overflow:
            return None
        n, first, last = self._overflow, self._overflow_first, self._overflow_last
        self._overflow, self._overflow_first, self._overflow_last = 0, None, None
        metrics().gaps.inc()
        log.error("session %s: %d events lost: recorder queue full", self.session_id, n)
        return records.Gap(
            at=_utcnow(),
            count=n,
            first_at=datetime.fromtimestamp(first, timezone.utc) if first else None,
            last_at=datetime.fromtimestamp(last, timezone.utc) if last else None,
            reason=f"recorder queue full ({self._maxlen} records): events were not captured",
        )

    def _seal(self, record: records.Record) -> Envelope:
        kind = record.kind
        env = self._sealer.seal(
            seq=self.next_seq,
            kind=kind,
            at=record.at,
            plaintext=records.encode(record),
            prev_hash=self.prev_hash,
        )
        self.next_seq += 1
        self.prev_hash = env.hash
        if kind == "tool_call":
            name = record.name  # type: ignore[union-attr]
            if name not in self._tools:
                self._tools.add(name)
                self._new_tools.append(name)
        elif kind == "opened":
            op = record
            self._open.architecture = op.architecture  # type: ignore[union-attr]
            self._open.agent_name = op.agent_name or self._open.agent_name  # type: ignore[union-attr]
            self._open.models = {
                k: m.model_dump()
                for k in ("stt", "llm", "tts", "realtime")
                if (m := getattr(op, k, None)) is not None
            }
            self._meta_dirty = True
        elif kind == "recording_notice":
            if record.completed:  # type: ignore[union-attr]
                self._notice_state = "completed"
            elif self._notice_state != "completed":
                self._notice_state = "incomplete"
        elif kind == "closed":
            self.closed = True
            self._closed_at = record.at
            self._close_reason = record.reason  # type: ignore[union-attr]
        return env

    def _update(self) -> SessionUpdate:
        upd = SessionUpdate(
            session_id=self.session_id,
            event_count=self.next_seq,
            head_hash=self.prev_hash,
            tool_names=self._new_tools,
            ended_at=self._closed_at,
            close_reason=self._close_reason,
            notice=self._notice_state,
        )
        if self._meta_dirty:
            upd.architecture = self._open.architecture
            upd.agent_name = self._open.agent_name
            upd.models = self._open.models
            self._meta_dirty = False
        self._new_tools = []
        return upd


@dataclass
class _Batch:
    opens: list[SessionOpen] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    updates: list[SessionUpdate] = field(default_factory=list)
    oldest: float | None = None
    """``time.time()`` when its oldest record was handed to the recorder."""

    def __bool__(self) -> bool:
        return bool(self.opens or self.envelopes or self.updates)

    def frames(self) -> list[tuple[bytes, bytes]]:
        out = [(TAG_SESSION, o.to_bytes()) for o in self.opens]
        out += [(TAG_ENVELOPE, e.to_bytes()) for e in self.envelopes]
        out += [(TAG_UPDATE, u.to_bytes()) for u in self.updates]
        return out


@dataclass
class _InFlight:
    """The direct write in flight: its batch, task, connection and deadline (loop time)."""

    batch: _Batch
    deadline: float
    started: float
    task: asyncio.Task[set[uuid.UUID]] | None = None
    conn: psycopg.AsyncConnection[Any] | None = None
    abandoned: bool = False


class AuditRecorder:
    """Records AgentSessions into encrypted, chained, durable storage.

    ``recorder = AuditRecorder.from_env(); await recorder.start()``, or ``async with``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        key_provider: KeyProvider | None = None,
        on_sessions_closed: Callable[[Sequence[ClosedSessionHead]], None] | None = None,
    ) -> None:
        """``on_sessions_closed`` is called (in a worker thread, errors logged and swallowed)
        once a batch that closed sessions is committed (directly or by a spool replay), with
        the final count and head of each whose row took the close. By default it is
        ``checkpoints.on_close_writer(settings, key_provider)``, which signs a checkpoint for
        each into ``AUDITAGENT_CHECKPOINT_DIR``: a commitment outside the database that
        `auditagent verify` holds the database to."""
        self.settings = settings or Settings()
        self._on_sessions_closed = on_sessions_closed
        self._default_checkpoints = on_sessions_closed is None
        self._key_provider = key_provider
        self._queue: deque[tuple[SessionRecording, RawEvent]] = deque()
        self._sessions: dict[uuid.UUID, SessionRecording] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._started = False
        self._closed = False
        self._url: str | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._spool: Spool | None = None
        self._pending: list[_Batch] = []  # kept in memory only if even the spool failed
        self._db_down_since: float | None = None  # set: batches go to the spool
        self._inflight: _InFlight | None = None
        self._replayer: asyncio.Task[None] | None = None
        self._orphans: set[asyncio.Task[Any]] = set()
        self._checkpoint_tasks: set[asyncio.Task[None]] = set()
        self._spool_busy = 0
        self._next_db_try = 0.0
        self._last_write = 0.0
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._failures: dict[uuid.UUID, guarantee.FailureMarker] = {}
        self._job_callback = False

    @classmethod
    def from_env(cls) -> AuditRecorder:
        return cls(Settings())

    @property
    def key_provider(self) -> KeyProvider:
        if self._key_provider is None:
            self._key_provider = load_key_provider(self.settings)
        return self._key_provider

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> AuditRecorder:
        if self._started:
            return self
        _ = self.key_provider  # a missing or loose keyring fails here, loudly, before any call
        if self._default_checkpoints:
            from .checkpoints import on_close_writer

            self._on_sessions_closed = on_close_writer(self.settings, self.key_provider)
        self._spool = Spool(self.settings.resolved_spool_dir)
        self._url = db.libpq_url(await asyncio.to_thread(db.resolve_database_url, self.settings))
        try:
            engine = db.make_engine(self.settings, url=db.sqlalchemy_url(self._url))
            try:
                await asyncio.to_thread(db.ensure_schema_current, engine)
            finally:
                engine.dispose()
        except DatabaseUnavailable:
            # Recording must not depend on the database being up: spool until it is.
            log.warning("database unreachable at start; records go to the spool until it is back")
            self._db_down_since = time.monotonic()
        self._wake = asyncio.Event()
        self._started = True
        self._task = asyncio.get_running_loop().create_task(self._run(), name="auditagent-writer")
        try:
            await self._report_failures()
        except Exception as exc:  # a bad marker must not stop recording
            _log_failure("reporting earlier recording failures", exc)
        return self

    async def __aenter__(self) -> AuditRecorder:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def attach(
        self,
        session: AgentSession[Any],
        *,
        tenant: str,
        participant: str | None = None,
        labels: dict[str, str] | None = None,
        room: str | None = None,
        job_id: str | None = None,
        redaction: PolicyLike = None,
        pause_rules: Iterable[PauseRule] = (),
        notice: str | None = None,
    ) -> SessionRecording:
        """Start recording ``session``. Call before ``session.start()``.

        ``notice``: a recording notice the agent says first, once the session runs (not
        interruptible; said again if the caller spoke over it); each time it is said is sealed
        as a ``recording_notice`` record (notice.py).

        ``pause_rules``: pause while a named agent/AgentTask is active or a named tool runs
        (``PauseRule``, see pauses.py), each for at most its ``max_duration``.

        ``redaction``: ``"pci"`` (default: ``AUDITAGENT_REDACTION``, else pci), ``"pii"``,
        ``"off"`` or a ``RedactionPolicy``; applied to every text before it is sealed.

        Raises ``TranscriptionDisabled`` (policy ``enforce``) when a realtime model would leave
        no text to record and cannot be switched on.
        """
        self._require_started()
        if (
            self.settings.require_recording
            and self._db_down_since is not None
            and not guarantee.spool_writable(self.settings.resolved_spool_dir)
        ):
            raise guarantee.RecordingUnavailable()
        rec = SessionRecording(
            self,
            tenant=tenant,
            participant=participant,
            labels=labels or {},
            capture=None,
            redaction=redaction,
        )
        capture = SessionCapture(
            session,
            put=rec._put,
            policy=self.settings.transcription_policy,
            record_interims=self.settings.record_interims,
        )
        # May raise TranscriptionDisabled; the recording is not registered yet, so nothing of
        # it is ever written.
        found = capture.check_transcription()
        rec.capture = capture
        rules = list(pause_rules)
        if rules:
            rec._rules = PauseRules(rules, rec)
        self._sessions[rec.session_id] = rec
        opened = capture.opened(
            tenant=tenant, participant=participant, labels=rec.labels, room=room, job_id=job_id
        )
        rec.add(opened.model_copy(update={"redaction": rec.redaction.name}))
        compat = capture.compat_notice()
        if compat is not None:
            rec.add(compat)
        for r in found:
            rec.add(r)
        capture.install()
        if notice:
            from .notice import start_notice

            rec._notice_state = "incomplete"  # until a recording_notice record says otherwise
            rec._notice_task = start_notice(rec, session, notice)
        return rec

    def open_session(
        self,
        *,
        tenant: str,
        participant: str | None = None,
        labels: dict[str, str] | None = None,
        opened: records.Opened | None = None,
        session_id: uuid.UUID | None = None,
        redaction: PolicyLike = None,
    ) -> SessionRecording:
        """Record a conversation that is not a LiveKit AgentSession (or a test's)."""
        self._require_started()
        rec = SessionRecording(
            self,
            tenant=tenant,
            participant=participant,
            labels=labels or {},
            capture=None,
            session_id=session_id,
            redaction=redaction,
        )
        self._sessions[rec.session_id] = rec
        opened = opened or records.Opened(
            at=_utcnow(),
            tenant=tenant,
            participant=participant,
            architecture="pipeline",
            labels=rec.labels,
        )
        rec.add(opened.model_copy(update={"redaction": rec.redaction.name}))
        return rec

    async def attach_job(
        self,
        ctx: Any,
        session: AgentSession[Any],
        *,
        tenant: str,
        participant: str | None = None,
        labels: dict[str, str] | None = None,
        redaction: PolicyLike = None,
        pause_rules: Iterable[PauseRule] = (),
        notice: str | None = None,
    ) -> SessionRecording:
        """Attach inside a LiveKit entrypoint and flush at job shutdown."""
        await self.start()
        job = getattr(ctx, "job", None)
        # The connected room's name, or the one the job was dispatched for (before connect).
        room = getattr(getattr(ctx, "room", None), "name", None) or getattr(
            getattr(job, "room", None), "name", None
        )
        job_id = getattr(job, "id", None)
        rec = self.attach(
            session,
            tenant=tenant,
            participant=participant,
            labels=labels,
            room=room,
            job_id=job_id,
            redaction=redaction,
            pause_rules=pause_rules,
            notice=notice,
        )
        if not self._job_callback:
            ctx.add_shutdown_callback(self._on_job_shutdown)
            self._job_callback = True
        return rec

    async def _on_job_shutdown(self, reason: str) -> None:
        """The job's shutdown callback: close once the sessions have closed themselves.

        LiveKit runs every shutdown callback at once, the session's own close
        (``job_shutdown``) among them, and this one was registered first (``attach_job``
        comes before ``session.start``). Closing at once would end the record before LiveKit's
        close event, under ``recorder_closed``; so wait (bounded) for the sessions still
        running to emit theirs.
        """
        await self._wait_for_livekit_closes(running_too=True)
        await self.aclose()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far has reached the database or the spool."""
        self._require_started()
        if self._task is None or self._task.done():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(fut)
        self._wake_soon()
        await asyncio.wait_for(asyncio.shield(fut), timeout)

    async def aclose(self) -> None:
        """Close open sessions, drain everything, release the database. Safe to call twice.

        Each session gets exactly one ``closed`` record, its last, with LiveKit's close reason
        when LiveKit closed it (``user_initiated``, ``participant_disconnected``,
        ``job_shutdown``, ...), else ``recorder_closed``. The end of a session is handled by the
        writer after everything queued before it, so ``session.history`` is reconciled only
        once its events are in, and adds only what no event delivered.
        """
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        # A session LiveKit is tearing down emits its close event (and its last items) soon.
        await self._wait_for_livekit_closes(running_too=False)
        for rec in list(self._sessions.values()):
            if rec.capture is not None:
                rec.capture.uninstall()
            if not rec.closed:
                rec._end()
        self._stopping = True
        self._wake_soon()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._spool is not None:
            self._spool.close()
        if self._failures:
            with contextlib.suppress(Exception):
                self._close_failures()
        if self._pending:
            lost = sum(len(b.envelopes) for b in self._pending)
            log.error(
                "%d records could neither be written nor spooled; spool dir %s",
                lost,
                self.settings.resolved_spool_dir,
            )

    async def _wait_for_livekit_closes(self, *, running_too: bool) -> None:
        """Wait, at most SESSION_CLOSE_WAIT_S, for attached sessions LiveKit is closing (and,
        with ``running_too``, those still running) to emit their close event."""
        waits = []
        for rec in list(self._sessions.values()):
            cap = rec.capture
            if cap is None or cap.close_seen.is_set():
                continue
            session = cap.session
            if lk.session_closing(session) or (running_too and lk.session_started(session)):
                waits.append(asyncio.ensure_future(cap.close_seen.wait()))
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=SESSION_CLOSE_WAIT_S)
        for w in pending:
            w.cancel()
        if pending:
            log.warning(
                "%d session(s) did not close within %.0f s; recorded as recorder_closed",
                len(pending),
                SESSION_CLOSE_WAIT_S,
            )

    # -- writer --------------------------------------------------------------------------
    def _require_started(self) -> None:
        if not self._started:
            raise AuditagentError(
                "the recorder is not started", fix="await recorder.start() before attach()"
            )
        if self._closed:
            raise AuditagentError("the recorder is closed", fix="create a new AuditRecorder")

    def _wake_soon(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        # Wake at least four times per durability window: a record must not sit in memory
        # longer than a fraction of it, whatever flush_interval says.
        interval = min(self.settings.flush_interval, self.settings.durable_within / 4)
        # Spool files left by crashed processes replay in the background (their sessions are
        # not ours, so nothing orders them against what this writer stores meanwhile).
        self._start_replay()
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
                    _log_failure("writer batch failed", exc)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
                if stopping and not self._queue:
                    break
                await asyncio.sleep(0)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        """At close: settle the write in flight, let a running replay end (bounded), wait for
        checkpoint writes, and stop abandoned writes."""
        with contextlib.suppress(Exception):
            await self._settle()
        if self._replayer is not None and not self._replayer.done():
            done, _ = await asyncio.wait({self._replayer}, timeout=self.settings.db_timeout)
            if not done:
                self._replayer.cancel()
        if self._checkpoint_tasks:
            await asyncio.wait(set(self._checkpoint_tasks))
        for task in list(self._orphans):
            task.cancel()
        if self._orphans:
            await asyncio.wait(set(self._orphans), timeout=1.0)

    async def _build_batch(self, limit: int) -> _Batch:
        """Translate, encode, seal and chain up to ``limit`` queued events.

        Runs on the voice loop, so it gives the loop back every ``LOOP_SLICE_S`` of work."""
        batch = _Batch()
        touched: dict[uuid.UUID, SessionRecording] = {}
        q = self._queue
        n = 0
        clock = time.perf_counter
        slice_end = clock() + LOOP_SLICE_S
        while q and n < limit:
            rec, raw = q.popleft()
            if batch.oldest is None:
                batch.oldest = raw[2]
            if rec._failed_since is not None:
                rec._lost += 1  # queued before the failure: not sealed, it could not be kept
                continue
            if rec._open_pending:
                batch.opens.append(rec._open)
                rec._open_pending = False
            for r in rec._redacted(rec._records_for(raw)):
                batch.envelopes.append(rec._seal(r))
                n += 1
            touched[rec.session_id] = rec
            if clock() > slice_end:
                await asyncio.sleep(0)
                slice_end = clock() + LOOP_SLICE_S
        for rec in list(self._sessions.values()):
            gap = rec._take_overflow()
            if gap is not None:
                batch.envelopes.append(rec._seal(gap))
                touched[rec.session_id] = rec
                if batch.oldest is None:
                    batch.oldest = time.time()
        for rec in touched.values():
            batch.updates.append(rec._update())
            if rec.closed:
                self._sessions.pop(rec.session_id, None)
        return batch

    async def _drain(self) -> None:
        m = metrics()
        limit = max(self.settings.batch_size, 1)
        while True:
            # Seal the next batch while the previous one is on its way to the database:
            # the client's CPU work overlaps the server's, one write in flight at a time.
            batch = await self._build_batch(limit)
            m.queue_depth.set(len(self._queue))
            await self._settle()
            if self._pending:
                await self._retry_pending()
            if not batch:
                await self._maintain()
                return
            await self._store(batch)
            if self._spooling() and time.monotonic() >= self._next_db_try:
                self._start_replay()  # under steady load there is never an idle moment
            if not self._queue:
                await self._settle()
                return
            await asyncio.sleep(0)

    # -- durability ----------------------------------------------------------------------
    #
    # Every batch is durable — committed, or fsynced to the spool — within
    # ``durable_within`` of the moment its oldest record was handed over, whatever the
    # database does. A direct write gets what is left of that window (minus a margin for
    # the spool's fsync); when it has not committed by then it is *abandoned*, not
    # cancelled (psycopg's cancel of a hung server waits up to 10 s more), and the batch
    # goes to the spool. The abandoned write may still commit later: the spool replays
    # through ON CONFLICT DO NOTHING, so nothing is stored twice. Once one batch has gone to
    # the spool every later batch follows it there until a replay has drained the spool,
    # so a session's rows reach the database in the order they were sealed.

    def _spooling(self) -> bool:
        return self._db_down_since is not None

    def _write_deadline(self, batch: _Batch) -> float:
        """Seconds this batch's direct write may take before it is abandoned."""
        oldest = batch.oldest if batch.oldest is not None else time.time()
        left = oldest + self.settings.durable_within - SPOOL_MARGIN_S - time.time()
        return min(max(left, MIN_WRITE_S), self.settings.db_timeout)

    async def _store(self, batch: _Batch) -> None:
        if self._spooling():
            await self._to_spool(batch)
            return
        data = await self._copy_bytes(batch.envelopes)
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
        m = metrics()
        task = inflight.task
        assert task is not None
        timeout = max(0.0, inflight.deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            exc = task.exception()
            if exc is None:
                self._conn = inflight.conn
                self._last_write = time.monotonic()
                m.flush_seconds.observe(time.perf_counter() - inflight.started)
                m.records_written.inc(len(inflight.batch.envelopes))
                self._notify_closed(inflight.batch, task.result())
                return
            self._conn = None  # closed by the failed write
            self._mark_down(exc)
        else:
            inflight.abandoned = True
            self._conn = None
            self._abandon(task)
            self._mark_down(TimeoutError())
        await self._to_spool(inflight.batch)

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        """Stop waiting for ``task`` without cancelling it now: it keeps (and finally closes)
        its connection, and is cancelled after db_timeout if the server has not answered."""
        self._orphans.add(task)
        handle = asyncio.get_running_loop().call_later(self.settings.db_timeout, task.cancel)

        def done(t: asyncio.Task[Any]) -> None:
            handle.cancel()
            self._orphans.discard(t)
            if not t.cancelled():
                t.exception()  # retrieved: an abandoned write's failure is expected

        task.add_done_callback(done)

    async def _write(self, flight: _InFlight, copy_data: bytes) -> set[uuid.UUID]:
        """One direct write (its own task). Uses the writer's connection, or a new one that
        the writer adopts on success; an abandoned write closes whatever it holds."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        flight.conn = conn
        closed = await _write_on(conn, flight.batch, idempotent=False, copy_data=copy_data)
        if flight.abandoned:
            await _close_quietly(conn)
        return closed

    async def _copy_bytes(self, envelopes: list[Envelope]) -> bytes:
        """The batch's binary COPY stream, encoded in slices between which the loop runs."""
        parts = [COPY_HEADER]
        for i in range(0, len(envelopes), SLICE_ITEMS):
            await asyncio.sleep(0)
            parts.append(encode_copy_rows(envelopes[i : i + SLICE_ITEMS]))
        parts.append(COPY_TRAILER)
        return b"".join(parts)

    async def _spool_bytes(self, batch: _Batch) -> bytes:
        """The batch as spool frames, encoded in slices between which the loop runs."""
        parts: list[bytes] = []
        items: list[Any] = [*batch.opens, *batch.envelopes, *batch.updates]
        tags = [TAG_SESSION] * len(batch.opens) + [TAG_ENVELOPE] * len(batch.envelopes)
        tags += [TAG_UPDATE] * len(batch.updates)
        for i in range(0, len(items), SLICE_ITEMS):
            await asyncio.sleep(0)
            frames = [
                (t, x.to_bytes())
                for t, x in zip(tags[i : i + SLICE_ITEMS], items[i : i + SLICE_ITEMS], strict=True)
            ]
            parts.append(encode_frames(frames))
        return b"".join(parts)

    def _notify_closed(self, batch: _Batch, closed: set[uuid.UUID]) -> None:
        """Sign a checkpoint for every session whose close this batch committed, in a worker
        thread; ``flush()`` and close wait for it.

        Only on commit, and only for sessions whose row took the close: a session erased while
        its call went on keeps the count its deletion record proves, and records that arrive
        under its destroyed key are cleared by the next retention run, not checkpointed."""
        from .checkpoints import ClosedSessionHead

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

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        # Connect lazily: a job process holds no connection until it has records to write.
        assert self._url is not None
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                self._url,
                connect_timeout=max(1, int(self.settings.db_timeout)),
                prepare_threshold=None,
                application_name="auditagent-recorder",
            ),
            self.settings.db_timeout,
        )

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(conn.close(), 1.0)

    def _mark_down(self, exc: BaseException) -> None:
        if self._db_down_since is None:
            log.warning(
                "database write failed or too slow (%s); spooling to %s",
                type(exc).__name__,
                self.settings.resolved_spool_dir,
            )
            self._db_down_since = time.monotonic()
        self._next_db_try = time.monotonic() + 1.0

    async def _maintain(self) -> None:
        """Idle work: start a recovery attempt while spooling; release an idle connection."""
        if self._spooling():
            if time.monotonic() >= self._next_db_try:
                self._start_replay()
        elif self._conn is not None and time.monotonic() - self._last_write > IDLE_DISCONNECT_S:
            # A thousand idle job processes must not pin a thousand connections.
            await self._drop_connection()

    async def _to_spool(self, batch: _Batch) -> None:
        assert self._spool is not None
        if self._db_down_since is None:
            # Whatever sent this batch here, later batches must queue behind it.
            self._db_down_since = time.monotonic()
        # Busy from the first slice of encoding: a replay must not decide the spool is empty
        # (and hand writing back to the database) while this batch is on its way into it.
        self._spool_busy += 1
        try:
            data = await self._spool_bytes(batch)
            await asyncio.to_thread(self._spool.append_encoded, data)
        except OSError as exc:
            log.error("spool write failed (%s); keeping the batch in memory", type(exc).__name__)
            self._pending.append(batch)
            if self.settings.require_recording:
                await self._recording_failed(batch)
            return
        finally:
            self._spool_busy -= 1
        metrics().records_spooled.inc(len(batch.envelopes))

    async def _recording_failed(self, batch: _Batch) -> None:
        """Neither the database nor the spool took ``batch``: under the recording guarantee,
        its sessions stop being recorded, are ended after the configured line, and a failure
        marker outside the spool lets the next recorder record that it happened."""
        now = time.time()
        for sid in {e.session_id for e in batch.envelopes}:
            rec = self._sessions.get(sid)
            if rec is None or rec._failed_since is not None:
                continue
            rec._failed_since = now
            marker = guarantee.FailureMarker(
                tenant=rec.tenant,
                session_id=str(sid),
                failed_from=now,
                records_lost=sum(1 for e in batch.envelopes if e.session_id == sid),
                ended_session=rec.capture is not None,
            )
            self._failures[sid] = marker
            await asyncio.to_thread(guarantee.write_marker, self.settings, marker)
            log.error("session %s: recording failed; ending the session", sid)
            if rec.capture is not None:
                task = asyncio.get_running_loop().create_task(
                    guarantee.end_unrecorded(
                        rec.capture.session, self.settings.recording_failed_line
                    )
                )
                self._orphans.add(task)
                task.add_done_callback(self._orphans.discard)

    def _close_failures(self) -> None:
        now = time.time()
        for sid, marker in self._failures.items():
            rec = self._sessions.get(sid)
            pending = sum(1 for b in self._pending for e in b.envelopes if e.session_id == sid)
            marker.failed_until = now
            marker.records_lost += pending + (rec._lost if rec is not None else 0)
            guarantee.write_marker(self.settings, marker)

    async def _report_failures(self) -> None:
        """Turn failure markers left by earlier processes into ``recording_failed`` records."""
        claimed = await asyncio.to_thread(guarantee.claim_markers, self.settings)
        if not claimed:
            return
        for _, marker in claimed:
            rec = self.open_session(
                tenant=marker.tenant, labels={"recording_failed_for": marker.session_id}
            )
            rec.add(
                records.RecordingFailed(at=_utcnow(), **guarantee.failure_record_fields(marker))
            )
            rec.close(reason="recording_failed")
        await self.flush()
        if not self._pending:
            for path, _ in claimed:
                with contextlib.suppress(OSError):
                    path.unlink()

    async def _retry_pending(self) -> None:
        pending, self._pending = self._pending, []
        for b in pending:
            await self._to_spool(b)

    # -- replay --------------------------------------------------------------------------

    def _start_replay(self) -> None:
        if self._spool is None or (self._replayer is not None and not self._replayer.done()):
            return
        self._next_db_try = time.monotonic() + 1.0
        self._replayer = asyncio.get_running_loop().create_task(
            self._replay_spool(), name="auditagent-replay"
        )

    async def _replay_spool(self) -> None:
        """Replay spool files no live writer holds (ours, or a crashed process's), oldest first,
        on a connection of its own; while spooling, also this writer's own file, until the
        spool is empty — then the writer writes directly again."""
        assert self._spool is not None
        spool = self._spool
        conn: psycopg.AsyncConnection[Any] | None = None
        m = metrics()
        try:
            conn = await self._connect()
            await asyncio.wait_for(conn.execute("SELECT 1"), self.settings.db_timeout)
            await conn.rollback()
            recovering = self._spooling()
            if recovering:
                log.warning("database reachable again; replaying the spool")
            while True:
                if self._spooling():
                    # Our own file must be closed before it can be claimed; never while a
                    # spool write is running in its thread.
                    while self._spool_busy:
                        await asyncio.sleep(0.005)
                    spool.seal_active()
                for path, _fd in spool.claim():
                    if not await self._replay_file(conn, path):
                        conn = None  # closed, or still held by the abandoned write
                        return
                m.spool_depth.set(await asyncio.to_thread(spool.depth_files))
                if not self._spooling():
                    return
                if spool.has_active or self._spool_busy or self._pending:
                    continue  # batches spooled while we replayed: those too, first
                # Nothing left behind us: later batches may go straight to the database.
                self._db_down_since = None
                return
        except Exception as exc:
            if self._spooling():
                self._mark_down(exc)
            else:
                log.warning("spool replay failed (%s); will retry", type(exc).__name__)
        finally:
            if conn is not None:
                await _close_quietly(conn)

    async def _replay_file(self, conn: psycopg.AsyncConnection[Any], path: Path) -> bool:
        """Replay one claimed file in chunks, each its own idempotent transaction; delete it
        when all are committed. False when the database failed (the file stays)."""
        assert self._spool is not None
        data = await asyncio.to_thread(path.read_bytes)
        reader = FrameReader(data)
        clock = time.perf_counter
        slice_end = clock() + LOOP_SLICE_S
        batch = _Batch()
        total = 0
        for tag, payload in reader:
            if tag == TAG_ENVELOPE:
                batch.envelopes.append(Envelope.from_bytes(payload))
            elif tag == TAG_SESSION:
                batch.opens.append(SessionOpen.from_bytes(payload))
            elif tag == TAG_UPDATE:
                batch.updates.append(SessionUpdate.from_bytes(payload))
            if len(batch.envelopes) >= REPLAY_CHUNK:
                if not await self._replay_chunk(conn, batch):
                    return False
                total += len(batch.envelopes)
                batch = _Batch()
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

    async def _replay_chunk(self, conn: psycopg.AsyncConnection[Any], batch: _Batch) -> bool:
        """Write one chunk idempotently; False (connection given up) when it failed or did
        not commit within db_timeout — the file stays for the next attempt."""
        data = await self._copy_bytes(batch.envelopes)
        task = asyncio.get_running_loop().create_task(
            _write_on(conn, batch, idempotent=True, copy_data=data)
        )
        done, _ = await asyncio.wait({task}, timeout=self.settings.db_timeout)
        if not done:
            # As for a direct write: never wait on a cancel; the task closes the connection.
            self._abandon(task)
            self._mark_down(TimeoutError())
            return False
        exc = task.exception()
        if exc is not None:
            self._mark_down(exc)
            return False
        metrics().records_replayed.inc(len(batch.envelopes))
        self._notify_closed(batch, task.result())
        return True


async def record_session(
    ctx: Any,
    session: AgentSession[Any],
    *,
    tenant: str,
    participant: str | None = None,
    labels: dict[str, str] | None = None,
    settings: Settings | None = None,
    redaction: PolicyLike = None,
    pause_rules: Iterable[PauseRule] = (),
    notice: str | None = None,
) -> SessionRecording:
    """The one-liner for a LiveKit entrypoint: record ``session``, flush at job shutdown.

    ``await record_session(ctx, session, tenant="acme", participant=identity)`` before
    ``session.start(...)``.
    """
    recorder = AuditRecorder(settings)
    return await recorder.attach_job(
        ctx,
        session,
        tenant=tenant,
        participant=participant,
        labels=labels,
        redaction=redaction,
        pause_rules=pause_rules,
        notice=notice,
    )
