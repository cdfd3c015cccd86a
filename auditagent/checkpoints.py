"""Signed checkpoints kept outside the database, and the verifier that holds the database to them.

Whoever controls the database (a superuser can disable the append-only triggers) could rewrite
a whole session chain consistently or delete a session; only a commitment stored in another
trust domain catches that. A checkpoint is a C2SP tlog-checkpoint-style signed note::

    auditagent/session/<uuid>          <- origin
    <event count>
    <base64 head hash>
    time <RFC 3339 UTC>
                                       <- blank line ends the signed body
    — auditagent <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>

The global checkpoint (``auditagent/global``) commits to every session at once: its size is
the number of sessions, its hash is ``SHA-256("auditagent/checkpoint-manifest/v1\\0" ||
manifest)`` where the manifest (written next to it as ``<name>.manifest``) has one line
``<session uuid> <count> <base64 head or ->`` per session in uuid order; its extension lines
carry the deletion-record chain (``deletions <count> <base64 head>``), the retention change
log (``changes <count> <base64 head>``: policy and legal-hold changes) and the hash of the
previous global checkpoint (``prev <base64>``), so a removed or reordered global checkpoint is
caught too, as CloudTrail's digest files chain to each other. Retention runs and erasures write
one when they finish; each policy or hold change writes a small ``auditagent/retention-changes``
note (size = entries, hash = head of the change log).

The key id is ``SHA-256(name || "\\n" || 0x01 || public key)[:4]`` as in C2SP signed notes.
Checkpoints go to a :class:`CheckpointSink`; :class:`DirectorySink` writes one file per
checkpoint (created exclusively, fsynced) into ``settings.resolved_checkpoint_dir``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from . import chain, crypto
from .errors import AuditagentError
from .keys import KeyProvider
from .period import RetentionPeriod
from .retention_proof import verify_retention
from .settings import Settings
from .store import retention as store

__all__ = [
    "Checkpoint",
    "CheckpointInvalid",
    "CheckpointSink",
    "ClosedSessionHead",
    "DirectorySink",
    "SessionCommitment",
    "VerifyReport",
    "encode_note",
    "manifest_root",
    "on_close_writer",
    "parse_note",
    "session_checkpoint_name",
    "session_commitment",
    "session_commitments",
    "verify_checkpoints",
    "write_global_checkpoint",
    "write_session_checkpoint",
]

log = logging.getLogger("auditagent.checkpoints")

KEY_NAME = "auditagent"
GLOBAL_ORIGIN = "auditagent/global"
CHANGES_ORIGIN = "auditagent/retention-changes"
SESSION_ORIGIN_PREFIX = "auditagent/session/"
_MANIFEST_LABEL = b"auditagent/checkpoint-manifest/v1\0"
_SIG_PREFIX = "\u2014 "  # em dash and space, as in signed notes
NOTE_SUFFIX = ".ckpt"
MANIFEST_SUFFIX = ".manifest"


class CheckpointInvalid(AuditagentError):
    """A checkpoint did not parse or its signature does not verify."""


def key_id(public_key: bytes, name: str = KEY_NAME) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode("ascii"),
            f"time {_rfc3339(self.time)}",
            *self.extensions,
        ]
        return ("\n".join(lines) + "\n").encode()

    def extension(self, name: str) -> list[str] | None:
        for line in self.extensions:
            parts = line.split(" ")
            if parts[0] == name:
                return parts[1:]
        return None

    @property
    def session_id(self) -> uuid.UUID | None:
        if self.origin.startswith(SESSION_ORIGIN_PREFIX):
            return uuid.UUID(self.origin[len(SESSION_ORIGIN_PREFIX) :])
        return None


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def encode_note(cp: Checkpoint, signing_key: bytes) -> bytes:
    """The signed note: body, a blank line, one signature line."""
    body = cp.body()
    public = crypto.signing_public_key(signing_key)
    sig = crypto.sign(signing_key, body)
    line = f"{_SIG_PREFIX}{KEY_NAME} {base64.b64encode(key_id(public) + sig).decode('ascii')}\n"
    return body + b"\n" + line.encode()


def parse_note(data: bytes, public_key: bytes) -> Checkpoint:
    """Parse and authenticate a note; ``CheckpointInvalid`` unless a signature line by
    ``KEY_NAME`` with this key's id verifies over the exact body bytes."""
    try:
        text_ = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointInvalid("checkpoint is not UTF-8") from None
    body, sep, sigs = text_.partition("\n\n")
    if not sep or not body:
        raise CheckpointInvalid("checkpoint has no signature block")
    body_bytes = (body + "\n").encode()
    want = key_id(public_key)
    verified = False
    for line in sigs.splitlines():
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointInvalid("malformed signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointInvalid("signature is not base64") from None
        if name != KEY_NAME or len(raw) != 68 or raw[:4] != want:
            continue
        if crypto.verify_signature(public_key, body_bytes, raw[4:]):
            verified = True
    if not verified:
        raise CheckpointInvalid("no valid signature by the checkpoint key")
    lines = body.split("\n")
    if len(lines) < 4:
        raise CheckpointInvalid("checkpoint body is too short")
    try:
        size = int(lines[1])
        if size < 0 or str(size) != lines[1]:
            raise ValueError
        root = base64.b64decode(lines[2], validate=True)
        if not lines[3].startswith("time "):
            raise ValueError
        when = _parse_time(lines[3][5:])
    except (ValueError, binascii.Error):
        raise CheckpointInvalid("checkpoint body is malformed") from None
    return Checkpoint(origin=lines[0], size=size, root=root, time=when, extensions=tuple(lines[4:]))


def manifest_lines(heads: Iterable[store.SessionHead]) -> bytes:
    out = []
    for h in sorted(heads, key=lambda h: str(h.session_id)):
        head = base64.b64encode(h.head_hash).decode("ascii") if h.head_hash else "-"
        out.append(f"{h.session_id} {h.event_count} {head}\n")
    return "".join(out).encode()


def manifest_root(manifest: bytes) -> bytes:
    return hashlib.sha256(_MANIFEST_LABEL + manifest).digest()


def parse_manifest(manifest: bytes) -> list[tuple[uuid.UUID, int, bytes | None]]:
    out = []
    for line in manifest.decode("ascii").splitlines():
        sid, count, head = line.split(" ")
        out.append((uuid.UUID(sid), int(count), None if head == "-" else base64.b64decode(head)))
    return out


# --- sinks ------------------------------------------------------------------------------------


class CheckpointSink(Protocol):
    """Somewhere outside the database that keeps what is appended (a directory now; a WORM
    bucket or the customer's endpoint later). ``append`` must never overwrite."""

    def append(self, name: str, data: bytes) -> str:
        """Store ``data`` under the new ``name``; returns where it went."""
        ...

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every stored (name, data), in name order."""
        ...


class DirectorySink(CheckpointSink):
    """One file per checkpoint in a directory; names sort by time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def append(self, name: str, data: bytes) -> str:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad checkpoint name {name!r}")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return str(path)

    def items(self) -> Iterator[tuple[str, bytes]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                yield path.name, path.read_bytes()

    def get(self, name: str) -> bytes | None:
        """The data stored under ``name``, or None (one file open, no directory listing)."""
        if "/" in name or name.startswith("."):
            return None
        try:
            return (self.directory / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


def default_sink(settings: Settings) -> DirectorySink:
    return DirectorySink(settings.resolved_checkpoint_dir)


def _stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedSessionHead:
    session_id: uuid.UUID
    event_count: int
    head_hash: bytes


_MAX_SESSION_NOTES = 64


def session_checkpoint_name(session_id: uuid.UUID, n: int = 0) -> str:
    """``session-<uuid>.ckpt``, then ``session-<uuid>.<n>.ckpt`` for later ones (a session
    that recorded more after a close): a reader finds a session's checkpoints by name,
    without listing the directory."""
    suffix = f".{n}" if n else ""
    return f"session-{session_id}{suffix}{NOTE_SUFFIX}"


def _sink_get(sink: CheckpointSink, name: str) -> bytes | None:
    get = getattr(sink, "get", None)
    if get is not None:
        data: bytes | None = get(name)
        return data
    return dict(sink.items()).get(name)


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
    for n in range(_MAX_SESSION_NOTES):
        name = session_checkpoint_name(head.session_id, n)
        existing = _sink_get(sink, name)
        if existing is None:
            try:
                return sink.append(name, note)
            except FileExistsError:
                existing = _sink_get(sink, name)  # another process got there first
                if existing is None:
                    continue
        with contextlib.suppress(CheckpointInvalid):
            old = parse_note(existing, public)
            if (old.size, old.root) == (cp.size, cp.root):
                return name
    raise AuditagentError(
        f"session {head.session_id} already has {_MAX_SESSION_NOTES} checkpoints",
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
    for n in range(_MAX_SESSION_NOTES):
        name = session_checkpoint_name(session_id, n)
        data = _sink_get(sink, name)
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
    heads, del_count, del_head = store.snapshot_heads(engine)
    with engine.connect() as conn:
        # Read after the snapshot: the log is append-only, so this commits to no less.
        chg_count, chg_head = store.changes_head(conn)
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
    stem = f"global-{_stamp(now)}"
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
        count, head = store.changes_head(conn)
    cp = Checkpoint(origin=CHANGES_ORIGIN, size=count, root=head, time=now)
    note = encode_note(cp, key_provider.signing_key())
    return sink.append(f"changes-{_stamp(now)}-{uuid.uuid4().hex[:8]}{NOTE_SUFFIX}", note)


# --- verifying --------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    checkpoints: int = 0
    checkpoints_valid: int = 0
    sessions: int = 0
    sessions_valid: int = 0
    deletion_records: int = 0
    deletion_chain_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.checkpoints > 0

    def lines(self) -> list[str]:
        out = list(self.problems)
        out.append(
            f"{self.checkpoints_valid}/{self.checkpoints} checkpoints valid, "
            f"{self.sessions_valid}/{self.sessions} sessions consistent, "
            f"deletion chain {'valid' if self.deletion_chain_ok else 'BROKEN'} "
            f"({self.deletion_records} records)"
        )
        if self.checkpoints == 0:
            out.insert(0, "no checkpoints found: nothing outside the database to compare with")
        return out


def verify_checkpoints(
    engine: Engine,
    sink: CheckpointSink,
    *,
    public_key: bytes,
    floor: RetentionPeriod | None = None,
) -> VerifyReport:
    """Hold the database to every checkpoint in ``sink``.

    Each session named by a checkpoint must either still verify as a chain with at least the
    committed count and exactly the committed head at that count, or have a deletion record
    accounting for at least that many events (with the same final hash when counts match).
    The deletion chain and the retention change log must verify — links, hashes and each
    entry's signature — and contain every committed head; each deletion's basis, the policy
    and hold tables and the sessions' keys and end times must agree with them (see
    ``retention_proof``). Global checkpoints must chain to each other and match their
    manifests."""
    report = VerifyReport()
    files = dict(sink.items())
    # session -> (count, head) of the largest count any checkpoint committed to
    committed: dict[uuid.UUID, tuple[int, bytes | None, str]] = {}
    deletion_heads: list[tuple[int, bytes, str]] = []
    change_heads: list[tuple[int, bytes, str]] = []
    prev_global: bytes | None = None

    def commit(sid: uuid.UUID, count: int, head: bytes | None, where: str) -> None:
        have = committed.get(sid)
        if have is None or count > have[0]:
            committed[sid] = (count, head, where)

    for name in sorted(files):
        if not name.endswith(NOTE_SUFFIX):
            continue
        data = files[name]
        report.checkpoints += 1
        try:
            cp = parse_note(data, public_key)
        except CheckpointInvalid as exc:
            report.problems.append(f"checkpoint {name}: {exc.message}")
            continue
        if cp.origin == GLOBAL_ORIGIN:
            if not _check_global(
                cp, name, files, prev_global, report, commit, deletion_heads, change_heads
            ):
                prev_global = data
                continue
            prev_global = data
        elif cp.origin == CHANGES_ORIGIN:
            change_heads.append((cp.size, cp.root, name))
        elif cp.session_id is not None:
            commit(cp.session_id, cp.size, cp.root if cp.size else None, name)
        else:
            report.problems.append(f"checkpoint {name}: unknown origin {cp.origin!r}")
            continue
        report.checkpoints_valid += 1

    # The deletion chain and the change log (signed), the heads checkpoints committed to,
    # and what retention's proof says about the tables and sessions.
    proof = verify_retention(
        engine,
        public_key=public_key,
        floor=floor,
        deletion_keep={n - 1 for n, _, _ in deletion_heads if n > 0},
        changes_keep={n - 1 for n, _, _ in change_heads if n > 0},
    )
    chain_result = proof.chain
    report.deletion_records = chain_result.count
    if not chain_result.ok:
        report.deletion_chain_ok = False
    report.problems.extend(proof.problems)
    for n, head, where in change_heads:
        if n == 0:
            continue
        got = proof.changes.hashes.get(n - 1)
        if got is None:
            if proof.changes.count < n:
                report.problems.append(
                    f"change log: {where} committed to {n} entries, the database has "
                    f"{proof.changes.count} (policy or hold changes removed)"
                )
        elif got != head:
            report.problems.append(f"change log: entry {n - 1} differs from {where} (rewritten)")
    for n, head, where in deletion_heads:
        if n == 0:
            continue
        got = chain_result.hashes.get(n - 1)
        if got is None:
            if chain_result.ok:
                report.deletion_chain_ok = False
                report.problems.append(
                    f"deletion records: {where} committed to {n} records, the database has "
                    f"{chain_result.count} (rolled back)"
                )
        elif got != head:
            report.deletion_chain_ok = False
            report.problems.append(
                f"deletion records: record {n - 1} differs from {where} (rewritten)"
            )

    deletions: dict[uuid.UUID, list[store.DeletionRecord]] = {}
    for r in store.iter_deletion_records(engine):
        deletions.setdefault(r.session_id, []).append(r)
    rows = store.session_heads(engine, list(committed))
    for sid, (count, committed_head, where) in sorted(committed.items(), key=lambda kv: str(kv[0])):
        report.sessions += 1
        problem = _check_session(
            engine, sid, count, committed_head, rows.get(sid), deletions.get(sid)
        )
        if problem is None:
            report.sessions_valid += 1
        else:
            report.problems.append(f"session {sid}: {problem} (committed by {where})")
    for sid in store.sessions_without_deletion_record(engine):
        report.problems.append(f"session {sid}: marked shredded/purged but has no deletion record")
    return report


def _check_global(
    cp: Checkpoint,
    name: str,
    files: dict[str, bytes],
    prev_global: bytes | None,
    report: VerifyReport,
    commit: Callable[[uuid.UUID, int, bytes | None, str], None],
    deletion_heads: list[tuple[int, bytes, str]],
    change_heads: list[tuple[int, bytes, str]],
) -> bool:
    prev = cp.extension("prev")
    want_prev = (
        base64.b64encode(hashlib.sha256(prev_global).digest()).decode() if prev_global else "-"
    )
    if prev is None or prev[0] != want_prev:
        report.problems.append(
            f"checkpoint {name}: does not chain to the previous global checkpoint "
            "(one was removed or replaced)"
        )
        return False
    manifest = files.get(name[: -len(NOTE_SUFFIX)] + MANIFEST_SUFFIX)
    if manifest is None:
        report.problems.append(f"checkpoint {name}: its manifest is missing")
        return False
    if manifest_root(manifest) != cp.root:
        report.problems.append(f"checkpoint {name}: manifest does not match the signed hash")
        return False
    try:
        entries = parse_manifest(manifest)
        dels = cp.extension("deletions")
        if dels is None or len(dels) != 2:
            raise ValueError("no deletions line")
        del_count, del_head = int(dels[0]), base64.b64decode(dels[1], validate=True)
        chg = cp.extension("changes")
        if chg is not None and len(chg) != 2:
            raise ValueError("malformed changes line")
        changes = (
            (int(chg[0]), base64.b64decode(chg[1], validate=True)) if chg is not None else None
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        report.problems.append(f"checkpoint {name}: malformed manifest or extension")
        return False
    if len(entries) != cp.size:
        report.problems.append(f"checkpoint {name}: manifest has {len(entries)} sessions")
        return False
    for sid, count, head in entries:
        commit(sid, count, head, name)
    deletion_heads.append((del_count, del_head, name))
    if changes is not None:
        change_heads.append((changes[0], changes[1], name))
    return True


def _check_session(
    engine: Engine,
    sid: uuid.UUID,
    count: int,
    head: bytes | None,
    row: store.SessionHead | None,
    deletions: list[store.DeletionRecord] | None,
) -> str | None:
    if deletions:
        d = deletions[-1]
        if d.event_count < count:
            return (
                f"{count} events were checkpointed but its deletion record accounts for only "
                f"{d.event_count}: events were removed outside the retention path"
            )
        if d.event_count == count and count > 0 and d.final_hash != head:
            return "its deletion record's final hash differs from the checkpointed head"
        return None
    if row is None:
        return "missing from the database and has no deletion record"
    if row.status in ("shredded", "purged"):
        return f"is {row.status} without a deletion record"
    with engine.connect() as conn:
        result = chain.verify(
            store.iter_session_events(conn, sid),
            expected_count=count if count > 0 else None,
            expected_head=head if count > 0 else None,
        )
    if not result.ok:
        return f"chain does not match the checkpoint: {result.reason}"
    return None


def load_public_key(value: str | None, key_provider: Callable[[], KeyProvider]) -> bytes:
    """``--public-key``: base64 text or a file holding it; default: the keyring's key."""
    if value is None:
        return key_provider().signing_public_key()
    text_ = value
    path = Path(value)
    with contextlib.suppress(OSError):
        if path.is_file():
            text_ = path.read_text().strip()
    try:
        raw = base64.b64decode(text_.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuditagentError(
            "the public key is not base64", fix="pass the output of `auditagent keys public`"
        ) from None
    if len(raw) != 32:
        raise AuditagentError(
            f"the public key is {len(raw)} bytes, an Ed25519 key is 32",
            fix="pass the output of `auditagent keys public`",
        )
    return raw
