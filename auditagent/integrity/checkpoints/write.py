"""Writing checkpoints: one per closed session, a global one after retention and erasure, a
small one per retention change; and reading back what a session's checkpoints commit to."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine

from auditagent.errors import AuditagentError
from auditagent.integrity.checkpoints.note import (
    CHANGES_ORIGIN,
    GLOBAL_ORIGIN,
    MANIFEST_SUFFIX,
    NOTE_SUFFIX,
    SESSION_ORIGIN_PREFIX,
    Checkpoint,
    CheckpointInvalid,
    encode_note,
    manifest_lines,
    manifest_root,
    parse_note,
)
from auditagent.integrity.checkpoints.sink import (
    MAX_SESSION_NOTES,
    CheckpointSink,
    default_sink,
    session_checkpoint_name,
    sink_get,
    stamp,
)
from auditagent.keys import KeyProvider
from auditagent.settings import Settings
from auditagent.store import changes
from auditagent.store import heads as store_heads

log = logging.getLogger("auditagent.checkpoints")

# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedSessionHead:
    session_id: uuid.UUID
    event_count: int
    head_hash: bytes


def write_session_checkpoint(
    sink: CheckpointSink,
    key_provider: KeyProvider,
    head: ClosedSessionHead,
    *,
    now: datetime | None = None,
) -> str:
    """Sign ``head`` into the sink under the session's next free name; a checkpoint already
    committing to the same count and head (a replayed close) is not written twice."""
    now = now or datetime.now(timezone.utc)
    cp = Checkpoint(
        origin=f"{SESSION_ORIGIN_PREFIX}{head.session_id}",
        size=head.event_count,
        root=head.head_hash,
        time=now,
    )
    public = key_provider.signing_public_key()
    note = encode_note(cp, key_provider.signing_key())
    for n in range(MAX_SESSION_NOTES):
        name = session_checkpoint_name(head.session_id, n)
        existing = sink_get(sink, name)
        if existing is None:
            try:
                return sink.append(name, note)
            except FileExistsError:
                existing = sink_get(sink, name)  # another process got there first
                if existing is None:
                    continue
        with contextlib.suppress(CheckpointInvalid):
            old = parse_note(existing, public)
            if (old.size, old.root) == (cp.size, cp.root):
                return name
    raise AuditagentError(
        f"session {head.session_id} already has {MAX_SESSION_NOTES} checkpoints",
        fix="check the checkpoint directory",
    )


@dataclass(frozen=True)
class SessionCommitment:
    """What the signed checkpoints of one session commit to: the largest count and its head,
    where that came from, and any checkpoint named for the session that does not verify."""

    session_id: uuid.UUID
    count: int
    head: bytes
    where: str
    problems: tuple[str, ...] = ()

    @property
    def expected(self) -> tuple[int, bytes]:
        return self.count, self.head

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def _commitment_of(
    session_id: uuid.UUID, notes: Iterable[tuple[str, bytes]], public_key: bytes
) -> SessionCommitment | None:
    best: Checkpoint | None = None
    where = ""
    problems: list[str] = []
    for name, data in notes:
        try:
            cp = parse_note(data, public_key)
        except CheckpointInvalid as exc:
            problems.append(f"checkpoint {name} does not verify ({exc.message})")
            continue
        if cp.session_id != session_id:
            problems.append(f"checkpoint {name} names another session")
            continue
        if best is None or cp.size > best.size:
            best, where = cp, name
    if best is None:
        if not problems:
            return None
        return SessionCommitment(session_id, 0, b"", "", tuple(problems))
    return SessionCommitment(session_id, best.size, best.root, where, tuple(problems))


def session_commitment(
    sink: CheckpointSink, session_id: uuid.UUID, *, public_key: bytes
) -> SessionCommitment | None:
    """The signed close checkpoints of one session, found by name; None if it has none."""
    notes: list[tuple[str, bytes]] = []
    for n in range(MAX_SESSION_NOTES):
        name = session_checkpoint_name(session_id, n)
        data = sink_get(sink, name)
        if data is None:
            break
        notes.append((name, data))
    if not notes:
        return None
    return _commitment_of(session_id, notes, public_key)


def session_commitments(
    sink: CheckpointSink, *, public_key: bytes
) -> tuple[dict[uuid.UUID, SessionCommitment], list[str]]:
    """Every session checkpoint in the sink, by session; plus problems with notes that do not
    parse, verify or name a session."""
    by_session: dict[uuid.UUID, list[tuple[str, bytes]]] = {}
    problems: list[str] = []
    for name, data in sink.items():
        if not (name.startswith("session-") and name.endswith(NOTE_SUFFIX)):
            continue
        try:
            cp = parse_note(data, public_key)
        except CheckpointInvalid as exc:
            problems.append(f"checkpoint {name}: {exc.message}")
            continue
        sid = cp.session_id
        if sid is None:
            problems.append(f"checkpoint {name}: unknown origin {cp.origin!r}")
            continue
        by_session.setdefault(sid, []).append((name, data))
    out: dict[uuid.UUID, SessionCommitment] = {}
    for sid, notes in by_session.items():
        c = _commitment_of(sid, notes, public_key)
        if c is not None:
            out[sid] = c
    return out, problems


def on_close_writer(
    settings: Settings, key_provider: KeyProvider, sink: CheckpointSink | None = None
) -> Callable[[Sequence[ClosedSessionHead]], None]:
    """A callback for ``AuditRecorder(on_sessions_closed=...)``: one signed checkpoint per
    session whose close was committed. Errors are logged, never raised into the recorder."""
    target = sink or default_sink(settings)

    def write(heads: Sequence[ClosedSessionHead]) -> None:
        for h in heads:
            try:
                write_session_checkpoint(target, key_provider, h)
            except Exception as exc:
                log.error(
                    "checkpoint for session %s not written (%s)", h.session_id, type(exc).__name__
                )

    return write


def _latest_global(sink: CheckpointSink) -> bytes | None:
    latest: bytes | None = None
    for name, data in sink.items():
        if name.startswith("global-") and name.endswith(NOTE_SUFFIX):
            latest = data
    return latest


def write_global_checkpoint(
    engine: Engine,
    key_provider: KeyProvider,
    sink: CheckpointSink,
    *,
    now: datetime | None = None,
) -> tuple[str, Checkpoint]:
    """Commit to every session head and the deletion chain; writes the manifest first, then
    the signed note (a note never points at a manifest that is not there)."""
    now = now or datetime.now(timezone.utc)
    heads, del_count, del_head = store_heads.snapshot_heads(engine)
    with engine.connect() as conn:
        # Read after the snapshot: the log is append-only, so this commits to no less.
        chg_count, chg_head = changes.changes_head(conn)
    manifest = manifest_lines(heads)
    previous = _latest_global(sink)
    prev = base64.b64encode(hashlib.sha256(previous).digest()).decode() if previous else "-"
    cp = Checkpoint(
        origin=GLOBAL_ORIGIN,
        size=len(heads),
        root=manifest_root(manifest),
        time=now,
        extensions=(
            f"deletions {del_count} {base64.b64encode(del_head).decode('ascii')}",
            f"changes {chg_count} {base64.b64encode(chg_head).decode('ascii')}",
            f"prev {prev}",
        ),
    )
    stem = f"global-{stamp(now)}"
    sink.append(stem + MANIFEST_SUFFIX, manifest)
    where = sink.append(stem + NOTE_SUFFIX, encode_note(cp, key_provider.signing_key()))
    return where, cp


def write_changes_checkpoint(
    engine: Engine,
    key_provider: KeyProvider,
    sink: CheckpointSink,
    *,
    now: datetime | None = None,
) -> str:
    """A small signed note on the head of the retention change log, written after each policy
    or hold change, so that removing the newest changes (and the hold they placed) shows."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        count, head = changes.changes_head(conn)
    cp = Checkpoint(origin=CHANGES_ORIGIN, size=count, root=head, time=now)
    note = encode_note(cp, key_provider.signing_key())
    return sink.append(f"changes-{stamp(now)}-{uuid.uuid4().hex[:8]}{NOTE_SUFFIX}", note)
