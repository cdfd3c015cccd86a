"""One session's sealing state, owned by the writer: its data key, its chain, its row.

Each raw event the writer takes off the queue becomes records (translated by the session's
capture, then redacted: redaction/step.py), each record an envelope sealed under the session's
data key and chained to the one before; the session's row follows (count, head, tools, close).
A session's first batch also carries its opening row and wrapped data key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import records
from ..errors import AuditagentError
from ..integrity import crypto
from ..integrity.envelope import Envelope, SessionSealer, dek_context
from ..keys import KeyProvider
from ..livekit import RawEvent
from ..metrics import metrics
from ..redaction import PCI, RedactionPolicy, Redactor
from ..redaction.step import RedactionStep
from ..search.writer import IndexKeys, SessionIndexer
from ..store.search_rows import IndexRows
from . import clock
from .ingest import SessionOpen, SessionUpdate
from .intake import Inbox, SessionIntake

if TYPE_CHECKING:
    from ..livekit import SessionCapture

log = logging.getLogger("auditagent.recorder")

_GENESIS = bytes(32)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def card_fingerprint(keys: KeyProvider, tenant: str) -> Callable[[str], str]:
    """A card number's keyed, tenant-separated fingerprint for its placeholder (policies with
    ``fingerprint=True``): the same card matches across mentions, the number stays unknown."""

    def fingerprint(digits: str) -> str:
        return keys.blind_index(tenant=tenant, value=digits, purpose="card_fingerprint").hex()[:16]

    return fingerprint


class SessionSealing:
    """Writer-side state of one recorded session (and, in ``intake``, its voice-loop side)."""

    def __init__(
        self,
        *,
        keys: KeyProvider,
        inbox: Inbox,
        tenant: str,
        participant: str | None,
        labels: dict[str, str],
        redaction: RedactionPolicy = PCI,
        session_id: uuid.UUID | None = None,
        index_keys: IndexKeys | None = None,
    ) -> None:
        if not tenant or len(tenant) > 128:
            raise AuditagentError(
                "tenant must be a non-empty string of at most 128 characters",
                fix="pass tenant='your-tenant' to attach()",
            )
        self.session_id = session_id or uuid.uuid4()
        self.tenant = tenant
        self.labels = dict(labels)
        self.capture: SessionCapture | None = None
        self.intake = SessionIntake(inbox, self)
        self.redaction = redaction
        self._redaction = RedactionStep(
            Redactor(redaction, fingerprint=card_fingerprint(keys, tenant))
        )
        self.notice: str | None = None  # sessions.notice: incomplete | completed
        self.key_id = uuid.uuid4().hex
        data_key = crypto.new_data_key()
        self.data_sealer = crypto.Sealer(data_key)
        """The data key's AES-GCM sealer: the call audio is sealed under it too."""
        self._sealer = SessionSealer(
            self.data_sealer, tenant=tenant, session_id=self.session_id, key_id=self.key_id
        )
        wrapped = keys.wrap(
            data_key,
            context=dek_context(tenant=tenant, session_id=self.session_id, key_id=self.key_id),
        )
        del data_key
        self._open = SessionOpen(
            session_id=self.session_id,
            tenant=tenant,
            started_at=clock.utcnow(),
            key_id=self.key_id,
            master_key_id=wrapped.master_key_id,
            wrapped=wrapped.blob,
            agent_name=labels.get("agent"),
            labels=self.labels,
            participant_index=(
                keys.blind_index(tenant=tenant, value=participant) if participant else None
            ),
        )
        self._open_pending = True
        self._indexer = (
            SessionIndexer(index_keys.for_tenant(tenant), self.session_id) if index_keys else None
        )
        self.next_seq = 0
        self.prev_hash = _GENESIS
        self._tools: set[str] = set()
        self._new_tools: list[str] = []
        self._meta_dirty = False
        self.closed = False
        self._closed_at: datetime | None = None
        self._close_reason: str | None = None

    @property
    def started_at(self) -> datetime:
        return self._open.started_at

    def take_open(self) -> SessionOpen | None:
        """The session's opening row, once: with the first batch that carries the session."""
        if not self._open_pending:
            return None
        self._open_pending = False
        return self._open

    def records_for(self, raw: RawEvent) -> list[records.Record]:
        """The records ``raw`` makes, redacted: what is sealed."""
        if self.intake.failed_since is not None:
            self.intake.lost += 1  # queued before recording failed: it could not be kept
            return []
        out = self._records_for(raw)
        step = self._redaction
        if not step.enabled or not out:
            return out
        redacted: list[records.Record] = []
        for r in out:
            redacted += step(r)
        return redacted

    def _records_for(self, raw: RawEvent) -> list[records.Record]:
        name, payload, t = raw
        if self.closed:
            # The closed record is the last; LiveKit emits nothing of the conversation after
            # its close event (state changes during teardown at most).
            log.debug("session %s: %s after close not recorded", self.session_id, name)
            return []
        if name == "__audio__":
            return [payload.record]
        if name == "__record__" and not (payload.kind == "closed" and self.capture is not None):
            return [payload]
        if name == "__close__" or name == "__record__":
            # the recorder closing, or close() on an attached session: reconcile first
            reason = None if name == "__close__" else payload.reason
            error = None if name == "__close__" else payload.error
            if self.capture is None:
                out: list[records.Record] = [
                    records.Closed(at=_at(t), reason=reason or "recorder_closed", error=error)
                ]
            else:
                out = self.capture.finish(t, reason=reason, error=error)
        elif self.capture is None:
            return []
        else:
            out = self._translate(raw)
        if self.intake.paused and any(r.kind == "closed" for r in out):
            # closed while paused: say how much was left out before the closing records
            return [self.intake.resumed_notice(t), *out]
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
                    at=_at(t),
                    count=1,
                    first_at=_at(t),
                    last_at=_at(t),
                    reason=f"event {name} could not be translated ({type(exc).__name__})",
                )
            ]

    def overflow_gap(self) -> records.Gap | None:
        """A ``gap`` record for the events the full queue turned away since the last call."""
        lost = self.intake.take_overflow()
        if lost is None:
            return None
        metrics().gaps.inc()
        log.error("session %s: %d events lost: recorder queue full", self.session_id, lost.lost)
        return records.Gap(
            at=clock.utcnow(),
            count=lost.lost,
            first_at=_at(lost.first) if lost.first else None,
            last_at=_at(lost.last) if lost.last else None,
            reason=(
                f"recorder queue full ({self.intake.queue_bound} records): events were not captured"
            ),
        )

    def seal(self, record: records.Record) -> Envelope:
        """Seal ``record`` as the chain's next envelope; note what the session row must say."""
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
        if self._indexer is not None:
            self._indexer.add(record)
        if isinstance(record, records.ToolCall):
            if record.name not in self._tools:
                self._tools.add(record.name)
                self._new_tools.append(record.name)
        elif isinstance(record, records.Opened):
            self._open.architecture = record.architecture
            self._open.agent_name = record.agent_name or self._open.agent_name
            self._open.models = {
                k: m.model_dump()
                for k in ("stt", "llm", "tts", "realtime")
                if (m := getattr(record, k, None)) is not None
            }
            self._meta_dirty = True
        elif isinstance(record, records.RecordingNotice):
            if record.completed:
                self.notice = "completed"
            elif self.notice != "completed":
                self.notice = "incomplete"
        elif isinstance(record, records.Closed):
            self.closed = True
            self._closed_at = record.at
            self._close_reason = record.reason
        return env

    def take_index(self) -> IndexRows | None:
        """The search index rows of what the batch just sealed (None with indexing off)."""
        return self._indexer.take(closing=self.closed) if self._indexer is not None else None

    def update(self) -> SessionUpdate:
        """What the batch just sealed changed about the session's row."""
        upd = SessionUpdate(
            session_id=self.session_id,
            event_count=self.next_seq,
            head_hash=self.prev_hash,
            tool_names=self._new_tools,
            ended_at=self._closed_at,
            close_reason=self._close_reason,
            notice=self.notice,
        )
        if self._meta_dirty:
            upd.architecture = self._open.architecture
            upd.agent_name = self._open.agent_name
            upd.models = self._open.models
            self._meta_dirty = False
        self._new_tools = []
        return upd
