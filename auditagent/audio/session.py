"""One session's audio recording: taps on its IO, the worker thread, the flush clock.

Created by the recorder for an attached session when ``AUDITAGENT_RECORD_AUDIO`` allows it.
Sealed chunks and their audio records come back onto the loop through ``deliver``, which
queues them behind the session's other records, so they reach the database or the spool in
the same batches, and the chain, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import auditagent.records as records
from auditagent.integrity import crypto

from .tap import TapAudioInput, TapAudioOutput
from .worker import AudioWorker, ChunkReady

if TYPE_CHECKING:
    from livekit.agents import AgentSession

    from auditagent.recorder.sealing import SessionSealing

__all__ = ["FLUSH_INTERVAL", "SessionAudio"]

log = logging.getLogger("auditagent.audio")

FLUSH_INTERVAL = 1.0
"""Seconds between two hand-overs of settled audio to the encoder."""
INPUT_STALL_S = 1.0
"""A caller channel that delivered nothing for this long is taken as settled (silent)."""
CLOSE_TIMEOUT_S = 3.0
"""How long closing waits for the worker's last chunk (the job has 10 s in all)."""


class SessionAudio:
    def __init__(
        self,
        *,
        sealer: crypto.Sealer,
        tenant: str,
        session_id: uuid.UUID,
        key_id: str,
        deliver: Callable[[ChunkReady], None],
        notice: Callable[[records.Notice], None],
    ) -> None:
        """``deliver`` queues a sealed chunk and its record behind the session's other records
        (past the queue bound and a pause: a chunk, silence while paused, is never dropped or
        the recording would have a hole its records cannot account for); ``notice`` queues a
        record saying the audio failed."""
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._notice = notice
        self._session_id = session_id
        self._sealer = sealer
        self._tenant = tenant
        self._key_id = key_id
        self.worker: AudioWorker | None = None
        self.input: TapAudioInput | None = None
        self.output: TapAudioOutput | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._closing_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    def _on_failed(self, what: str) -> None:
        self._notice(
            records.Notice(
                at=datetime.now(timezone.utc),
                code="audio_failed",
                message=f"audio recording stopped ({what}); the records continue",
            )
        )

    def attach(self, session: AgentSession[Any]) -> None:
        """Tap the session's audio IO now, or once LiveKit has set it up (RoomIO does so
        inside ``session.start``, before the session's first state change)."""
        if self._install(session):
            return

        def late(*_: Any) -> None:
            session.off("agent_state_changed", late)
            self._loop.call_soon(self._install, session)

        session.on("agent_state_changed", late)

    def _install(self, session: AgentSession[Any]) -> bool:
        """A failure costs the audio (an ``audio_failed`` notice), never the call or records."""
        try:
            return self.install(session)
        except Exception as exc:
            what = type(exc).__name__
            log.error("session %s: audio taps not installed: %s", self._session_id, what)
            self._on_failed(what)
            return False

    @property
    def active(self) -> bool:
        return self._is_active()

    def _is_active(self) -> bool:
        # a failed worker takes nothing more: its queue would only grow
        w = self.worker
        return w is not None and not self._closing and not w.failed

    def install(self, session: AgentSession[Any]) -> bool:
        """Tap what audio IO the session has now; True when something was tapped."""
        if self._closing:
            return False
        src, sink = session.input.audio, session.output.audio
        tapped = False
        if src is not None and not isinstance(src, TapAudioInput):
            tapped = True
        if sink is not None and not isinstance(sink, TapAudioOutput):
            tapped = True
        if not tapped:
            return False
        if self.worker is None:
            self.worker = AudioWorker(
                sealer=self._sealer,
                tenant=self._tenant,
                session_id=self._session_id,
                key_id=self._key_id,
                t0=time.time(),
                on_chunk=self._from_worker,
                on_failed=self._failed_from_worker,
            )
            self.worker.start()
            self._flusher = self._loop.create_task(self._flush_clock(), name="auditagent-audio")
        put = self.worker.put
        if src is not None and not isinstance(src, TapAudioInput):
            self.input = TapAudioInput(src, put=put, active=self._is_active)
            session.input.audio = self.input
        if sink is not None and not isinstance(sink, TapAudioOutput):
            self.output = TapAudioOutput(sink, put=put, active=self._is_active)
            session.output.audio = self.output
        return True

    def pause(self, t: float) -> None:
        if self.active:
            assert self.worker is not None
            self.worker.put(("pause", t))

    def resume(self, t: float) -> None:
        if self.active:
            assert self.worker is not None
            self.worker.put(("resume", t))

    # -- worker thread -> loop -----------------------------------------------------------
    def _from_worker(self, ready: ChunkReady) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is ending
            self._loop.call_soon_threadsafe(self._deliver, ready)

    def _failed_from_worker(self, what: str) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_failed, what)

    # -- loop ----------------------------------------------------------------------------
    def _settled_until(self) -> float:
        now = time.time()
        until = now - INPUT_STALL_S
        if self.input is not None:
            until = max(until, self.input.settled_at)
        if self.output is not None and (pending := self.output.pending_since) is not None:
            until = min(until, pending)
        return until

    async def _flush_clock(self) -> None:
        while self.active:
            await asyncio.sleep(FLUSH_INTERVAL)
            if self.active:
                assert self.worker is not None
                self.worker.put(("flush", self._settled_until()))

    def close_then(self, then: Callable[[], None]) -> None:
        """End the recording, then call ``then`` (on the loop): LiveKit's close event goes
        into the chain after the last chunks."""

        async def run() -> None:
            try:
                await self.aclose()
            finally:
                then()

        self._closing_task = self._loop.create_task(run())

    async def finish(self) -> None:
        """End the recording (bounded) and wait for whatever ``close_then`` holds back."""
        if self._closing_task is not None:
            await self._closing_task
        else:
            await self.aclose()

    async def aclose(self) -> None:
        """End the recording: the last chunks are delivered before this returns (bounded)."""
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        try:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
            worker = self.worker
            if worker is None:
                return
            worker.put(("close", time.time()))
            done = await asyncio.to_thread(worker.done.wait, CLOSE_TIMEOUT_S)
            if not done:
                log.error("audio worker did not finish within %.0f s", CLOSE_TIMEOUT_S)
                self._on_failed("timeout")
            # deliveries the worker queued before it finished run before this continues
            await asyncio.sleep(0)
        finally:
            self.closed.set()


def record_audio(state: SessionSealing, session: AgentSession[Any]) -> SessionAudio:
    """Taps on ``session``'s audio IO, sealed under ``state``'s data key and delivered to its
    intake (now, or once LiveKit has set the IO up)."""
    audio = SessionAudio(
        sealer=state.data_sealer,
        tenant=state.tenant,
        session_id=state.session_id,
        key_id=state.key_id,
        deliver=state.intake.deliver_audio,
        notice=state.intake.add,
    )
    audio.attach(session)
    return audio
