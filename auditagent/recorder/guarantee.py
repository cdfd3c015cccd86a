"""The recording guarantee (``AUDITAGENT_REQUIRE_RECORDING=true``), for deployments that may not
hold a call they cannot record (MiFID II asks firms to keep evidence of when they could not).

* ``attach`` refuses, with a one-line error, when neither the database nor the spool can be
  written.
* During a call, when a batch can be written to neither, the sessions it belongs to stop being
  recorded (nothing more is sealed that cannot be kept), the agent says
  ``AUDITAGENT_RECORDING_FAILED_LINE`` and the session ends. A small *failure marker* (tenant,
  session id, times, counts; no content) is written outside the spool.
* The next recorder that starts and can write turns each marker into a ``recording_failed``
  record, in a session of its own labelled ``recording_failed_for=<session id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AuditagentError
from ..settings import Settings

if TYPE_CHECKING:
    from .batch import Batch
    from .sealing import SessionSealing

log = logging.getLogger("auditagent.guarantee")

MARKER_DIR = "recording-failed"
SUFFIX = ".json"


class RecordingUnavailable(AuditagentError):
    """Recording is required and neither the database nor the spool can be written."""

    def __init__(self) -> None:
        super().__init__(
            "recording is required (AUDITAGENT_REQUIRE_RECORDING) and neither the database nor "
            "the spool can be written",
            fix="start the database or make AUDITAGENT_SPOOL_DIR writable, then attach again",
        )


@dataclass
class FailureMarker:
    tenant: str
    session_id: str
    failed_from: float
    failed_until: float | None = None
    records_lost: int = 0
    ended_session: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FailureMarker:
        d = json.loads(data)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def marker_dirs(settings: Settings) -> list[Path]:
    """Where markers go: not the spool (it is what failed), in order of preference."""
    return [settings.data_dir / MARKER_DIR, settings.resolved_checkpoint_dir / MARKER_DIR]


def spool_writable(directory: Path) -> bool:
    """Whether a file can be created, written and synced in the spool directory now."""
    probe = directory / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
        return True
    except OSError:
        return False


def write_marker(settings: Settings, marker: FailureMarker) -> Path | None:
    """Write (or rewrite) ``marker`` durably in the first place that takes it."""
    for d in marker_dirs(settings):
        path = d / f"{marker.session_id}{SUFFIX}"
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, marker.to_bytes())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            return path
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            continue
    log.error("recording failure of session %s could not be noted anywhere", marker.session_id)
    return None


def claim_markers(settings: Settings) -> list[tuple[Path, FailureMarker]]:
    """Markers left by earlier processes, each renamed to this process's claim first so two
    recorders starting together never report the same failure twice."""
    out: list[tuple[Path, FailureMarker]] = []
    for d in marker_dirs(settings):
        if not d.is_dir():
            continue
        for path in sorted(d.glob(f"*{SUFFIX}")):
            claimed = path.with_name(path.name + f".claimed-{os.getpid()}")
            try:
                os.rename(path, claimed)
                out.append((claimed, FailureMarker.from_bytes(claimed.read_bytes())))
            except (OSError, ValueError, TypeError, KeyError):
                continue
    return out


def failure_record_fields(marker: FailureMarker) -> dict[str, Any]:
    def dt(t: float | None) -> datetime | None:
        return None if t is None else datetime.fromtimestamp(t, timezone.utc)

    return {
        "failed_from": dt(marker.failed_from),
        "failed_until": dt(marker.failed_until),
        "records_lost": marker.records_lost,
        "ended_session": marker.ended_session,
        "reason": f"session {marker.session_id}: neither the database nor the spool could be "
        "written",
    }


async def end_unrecorded(session: Any, line: str) -> None:
    """Say ``line`` and end the session; never raises."""
    try:
        handle = session.say(line, allow_interruptions=False)
        await handle.wait_for_playout()
    except Exception as exc:
        log.warning("could not say the recording-failed line: %s", type(exc).__name__)
    try:
        session.shutdown()
    except Exception as exc:
        log.warning("could not end the session: %s", type(exc).__name__)


class Guarantee:
    """The writer's side: which sessions failed, their markers, the tasks ending them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.failures: dict[uuid.UUID, FailureMarker] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def unrecordable(
        self, batch: Batch, sessions: Mapping[uuid.UUID, SessionSealing]
    ) -> None:
        """Neither the database nor the spool took ``batch``: its sessions stop being
        recorded, are ended after the configured line, and a marker notes the failure."""
        now = time.time()
        for sid in {e.session_id for e in batch.envelopes}:
            state = sessions.get(sid)
            if state is None or state.intake.failed_since is not None:
                continue
            state.intake.failed_since = now
            marker = FailureMarker(
                tenant=state.tenant,
                session_id=str(sid),
                failed_from=now,
                records_lost=sum(1 for e in batch.envelopes if e.session_id == sid),
                ended_session=state.capture is not None,
            )
            self.failures[sid] = marker
            await asyncio.to_thread(write_marker, self.settings, marker)
            log.error("session %s: recording failed; ending the session", sid)
            if state.capture is not None:
                task = asyncio.get_running_loop().create_task(
                    end_unrecorded(state.capture.session, self.settings.recording_failed_line)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def close(self, sessions: Mapping[uuid.UUID, SessionSealing], pending: Iterable[Batch]) -> None:
        """At the recorder's close: each failure's end time and what it cost, rewritten."""
        now = time.time()
        kept = list(pending)
        for sid, marker in self.failures.items():
            state = sessions.get(sid)
            marker.failed_until = now
            marker.records_lost += sum(1 for b in kept for e in b.envelopes if e.session_id == sid)
            marker.records_lost += state.intake.lost if state is not None else 0
            write_marker(self.settings, marker)
