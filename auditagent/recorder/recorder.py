"""AuditRecorder: attach to AgentSessions; one writer task seals, chains and stores.

The voice loop only ever appends a tuple to a deque (intake.py). Everything else —
translating LiveKit events into records, encoding, sealing, chaining, and the database round
trip — happens in the writer task (writer.py), which never waits on the database for longer
than ``db_timeout``: a slow or absent database sends the batch to the durable spool instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import records
from ..audio.session import record_audio
from ..errors import AuditagentError, DatabaseUnavailable
from ..keys import KeyProvider, load_key_provider
from ..livekit import SessionCapture
from ..livekit import _compat as lk
from ..redaction import PolicyLike, resolve_policy
from ..search.writer import IndexKeys
from ..settings import Settings
from ..store import db
from . import clock
from .guarantee import RecordingUnavailable, claim_markers, failure_record_fields, spool_writable
from .handle import SessionRecording
from .pauses import PauseRule, PauseRules
from .sealing import SessionSealing
from .writer import Writer

if TYPE_CHECKING:
    from livekit.agents import AgentSession

    from ..integrity.checkpoints import ClosedSessionHead

log = logging.getLogger("auditagent.recorder")

# How long closing waits for LiveKit's own close of a session it is (about to be) tearing down,
# so the record carries LiveKit's reason; a job has 10 s (shutdown_process_timeout) in all.
SESSION_CLOSE_WAIT_S = 5.0


class AuditRecorder:
    """Records AgentSessions into encrypted, chained, durable storage: ``async with``, or
    ``recorder = AuditRecorder.from_env(); await recorder.start()``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        key_provider: KeyProvider | None = None,
        on_sessions_closed: Callable[[Sequence[ClosedSessionHead]], None] | None = None,
    ) -> None:
        """``on_sessions_closed`` is called (in a worker thread, errors logged and swallowed)
        with the final count and head of each session whose close was committed. By default
        it signs a checkpoint for each into ``AUDITAGENT_CHECKPOINT_DIR``
        (``checkpoints.on_close_writer``): a commitment outside the database."""
        self.settings = settings or Settings()
        self._on_sessions_closed = on_sessions_closed
        self._default_checkpoints = on_sessions_closed is None
        self._key_provider = key_provider
        self._writer = Writer(self.settings)
        self._started = False
        self._closed = False
        self._job_callback = False
        self._index_keys: IndexKeys | None = None
        self._notices: set[asyncio.Task[None]] = set()

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
            from ..integrity.checkpoints import on_close_writer

            self._on_sessions_closed = on_close_writer(self.settings, self.key_provider)
        url = db.libpq_url(await asyncio.to_thread(db.resolve_database_url, self.settings))
        db_down = False
        try:
            engine = db.make_engine(self.settings, url=db.sqlalchemy_url(url))
            try:
                await asyncio.to_thread(db.ensure_schema_current, engine)
            finally:
                engine.dispose()
        except DatabaseUnavailable:
            # Recording must not depend on the database being up: spool until it is.
            log.warning("database unreachable at start; records go to the spool until it is back")
            db_down = True
        self._started = True
        self._writer.start(url=url, db_down=db_down, on_sessions_closed=self._on_sessions_closed)
        try:
            await self._report_failures()
        except Exception as exc:  # a bad marker must not stop recording
            log.error("reporting earlier recording failures: %s", type(exc).__name__)
        return self

    async def _report_failures(self) -> None:
        """Turn failure markers left by earlier processes (require_recording) into
        ``recording_failed`` records, each in a session of its own."""
        claimed = await asyncio.to_thread(claim_markers, self.settings)
        if not claimed:
            return
        for _, marker in claimed:
            rec = self.open_session(
                tenant=marker.tenant, labels={"recording_failed_for": marker.session_id}
            )
            rec.add(records.RecordingFailed(at=clock.utcnow(), **failure_record_fields(marker)))
            rec.close(reason="recording_failed")
        await self.flush()
        for path, _ in claimed:
            with contextlib.suppress(OSError):
                path.unlink()

    async def __aenter__(self) -> AuditRecorder:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _new_session(
        self,
        *,
        tenant: str,
        participant: str | None,
        labels: dict[str, str] | None,
        redaction: PolicyLike,
        session_id: uuid.UUID | None = None,
    ) -> SessionSealing:
        self._require_started()
        return SessionSealing(
            keys=self.key_provider,
            inbox=self._writer.inbox,
            tenant=tenant,
            participant=participant,
            labels=labels or {},
            redaction=resolve_policy(redaction, default=resolve_policy(self.settings.redaction)),
            session_id=session_id,
            index_keys=self._search_keys(),
        )

    def _search_keys(self) -> IndexKeys | None:
        """Each tenant's search key, derived once (None with AUDITAGENT_SEARCH_INDEX=false)."""
        if not self.settings.search_index:
            return None
        if self._index_keys is None:
            self._index_keys = IndexKeys(self.key_provider)
        return self._index_keys

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

        ``redaction``: ``"pci"`` (default: ``AUDITAGENT_REDACTION``), ``"pii"``, ``"off"`` or a
        ``RedactionPolicy``. ``pause_rules``: pause while a named agent/AgentTask or tool runs,
        for at most its ``max_duration``. ``notice``: a recording notice the agent says first,
        sealed as ``recording_notice`` records. Raises ``TranscriptionDisabled`` (policy
        ``enforce``: a realtime model would leave no text) and ``RecordingUnavailable``
        (``AUDITAGENT_REQUIRE_RECORDING``: neither the database nor the spool can be written).
        """
        self._require_started()
        if (
            self.settings.require_recording
            and self._writer.database_down()
            and not spool_writable(self.settings.resolved_spool_dir)
        ):
            raise RecordingUnavailable()
        state = self._new_session(
            tenant=tenant, participant=participant, labels=labels, redaction=redaction
        )
        capture = SessionCapture(
            session,
            put=state.intake.put,
            policy=self.settings.transcription_policy,
            record_interims=self.settings.record_interims,
        )
        # May raise TranscriptionDisabled; the recording is not registered yet, so nothing of
        # it is ever written.
        found = capture.check_transcription()
        state.capture = capture
        self._writer.register(state)
        opened = capture.opened(
            tenant=tenant, participant=participant, labels=state.labels, room=room, job_id=job_id
        )
        state.intake.add(opened.model_copy(update={"redaction": state.redaction.name}))
        compat = capture.compat_notice()
        if compat is not None:
            state.intake.add(compat)
        for r in found:
            state.intake.add(r)
        rec = SessionRecording(state)
        rules = list(pause_rules)
        if rules:
            state.intake.rules = PauseRules(rules, rec)
        capture.install()
        # Unset means "when the session has audio IO": taps go in when it does, now or once
        # LiveKit has set it up; a text-only session never gets any.
        if self.settings.record_audio is not False:
            state.intake.audio = record_audio(state, session)
        if notice:
            task = rec.start_notice(session, notice)
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)
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
        state = self._new_session(
            tenant=tenant,
            participant=participant,
            labels=labels,
            redaction=redaction,
            session_id=session_id,
        )
        self._writer.register(state)
        opened = opened or records.Opened(
            at=clock.utcnow(),
            tenant=tenant,
            participant=participant,
            architecture="pipeline",
            labels=state.labels,
        )
        state.intake.add(opened.model_copy(update={"redaction": state.redaction.name}))
        return SessionRecording(state)

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
        await self._writer.flush(timeout)

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
        for task in list(self._notices):
            task.cancel()  # a notice still waiting for its session to start
        # the call audio's last chunks go into the chains before the sessions' ends
        await asyncio.gather(
            *(s.intake.audio.finish() for s in self._writer.open_sessions() if s.intake.audio)
        )
        for state in self._writer.open_sessions():
            if state.capture is not None:
                state.capture.uninstall()
            if not state.closed:
                state.intake.end()
        await self._writer.stop()

    async def _wait_for_livekit_closes(self, *, running_too: bool) -> None:
        """Wait, at most SESSION_CLOSE_WAIT_S, for attached sessions LiveKit is closing (and,
        with ``running_too``, those still running) to emit their close event."""
        waits = []
        for state in self._writer.open_sessions():
            cap = state.capture
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

    def _require_started(self) -> None:
        if not self._started:
            raise AuditagentError(
                "the recorder is not started", fix="await recorder.start() before attach()"
            )
        if self._closed:
            raise AuditagentError("the recorder is closed", fix="create a new AuditRecorder")


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
