"""SessionCapture: one AgentSession's hooks, policy, translation and close, put together.

The hooks (hooks.py) run on the voice loop and only queue raw events; everything else runs
on the recorder's writer: translate.py turns events into records, reconcile.py adds what only
history holds at close. transcription.py applies the policy at attach and for each agent that
takes over; _compat.py holds every private LiveKit attribute and names what a missing one
costs, in a notice sealed at attach.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from livekit.agents import llm as lk_llm
from livekit.agents.voice import AgentSession

from ..records import Notice, Opened, Record, TranscriptionInfo
from ..settings import TranscriptionPolicy
from . import _compat as lk
from . import hooks
from .fields import (
    agent_attr,
    current_agent,
    getattr_safe,
    model_info,
    safe_str,
    sdk_versions,
    utc,
)
from .hooks import RawEvent
from .reconcile import PausedWindows, closed_record, reconcile
from .tap import install_tap
from .transcription import TranscriptionGuard
from .translate import Translator

logger = logging.getLogger("auditagent.capture")


class SessionCapture:
    """Hooks one AgentSession and turns what it emits into audit records."""

    def __init__(
        self,
        session: AgentSession[Any],
        *,
        put: Callable[[RawEvent], None],
        policy: TranscriptionPolicy = "enforce",
        record_interims: bool = False,
    ) -> None:
        self._session = session
        self._put = put
        # the session's record opens when the capture is made, before anything attach finds
        self._created = time.time()
        self._hooks: list[tuple[str, Any]] = []
        self._closed = False
        self._guard = TranscriptionGuard(session, policy=policy)
        self._translator = Translator(session, record_interims=record_interims)
        # recording paused (SessionRecording.pause): left out of the close-time reconciliation
        self._paused = PausedWindows()
        # LiveKit's close, as the hot path saw it: (reason, error); the recorder waits on
        # close_seen at shutdown so the session's own close reason is the one recorded
        self.close_seen = asyncio.Event()
        self.livekit_close: tuple[str, Any] | None = None

    # ------------------------------------------------------------------ hot path wiring

    def install(self) -> None:
        if self._hooks:
            return
        self._hooks = hooks.install(
            self._session, put=self._put, first_state=self._install_tap, note_close=self._note_close
        )

    def uninstall(self) -> None:
        hooks.uninstall(self._session, self._hooks)

    def _install_tap(self) -> None:
        """From the first agent_state_changed hook, once: O(1), no I/O."""
        self._translator.tap = install_tap(self._session)

    def _note_close(self, ev: Any) -> None:
        """Hot path, from the close hook: two attribute reads and an Event.set()."""
        reason = getattr(ev, "reason", None)
        self.livekit_close = (str(getattr(reason, "value", reason)), getattr(ev, "error", None))
        self.close_seen.set()

    @property
    def closed(self) -> bool:
        """Whether the ``closed`` record was built (writer side)."""
        return self._closed

    @property
    def session(self) -> AgentSession[Any]:
        return self._session

    # ------------------------------------------------------------------ attach-time checks

    def compat_notice(self) -> Notice | None:
        """A notice naming what the recording loses when LiveKit lacks a private attribute the
        capture reads; logged once, as an error."""
        degraded = lk.check_session(self._session)
        agent = self._translator.seen_agent
        models = {id(x): x for x in (self._session.llm, agent_attr(self._session, agent, "llm"))}
        for m in models.values():
            degraded += lk.check_model(m)
        if not degraded:
            return None
        missing = [d.attribute for d in degraded]
        lost = list(dict.fromkeys(d.capability for d in degraded))
        logger.error(
            "auditagent: this LiveKit lacks %s; recording degraded: %s (see "
            "auditagent/livekit/_compat.py)",
            ", ".join(missing),
            "; ".join(lost),
        )
        return Notice(
            at=datetime.now(timezone.utc),
            code="livekit_internals_missing",
            message="LiveKit lacks attributes the recorder reads; degraded: " + "; ".join(lost),
            details={"missing": missing, "degraded": lost},
        )

    def check_transcription(self, *, agent: Any = None) -> list[Record]:
        """Check every realtime model the session can use now; apply the policy.

        Raises TranscriptionDisabled under ``enforce`` when a model cannot produce the text.
        ``agent`` is the Agent about to be passed to ``session.start`` when the caller knows it.
        """
        out: list[Record] = []
        now = time.time()
        agent = agent if agent is not None else current_agent(self._session)
        out.extend(self._guard.check(self._session.llm, None, now, may_raise=True))
        if agent is not None:
            self._translator.seen_agent = agent
            m = agent_attr(self._session, agent, "llm")
            out.extend(self._guard.check(m, agent, now, may_raise=True))
        return out

    def opened(
        self,
        *,
        tenant: str,
        participant: str | None,
        labels: dict[str, str],
        room: str | None,
        job_id: str | None,
    ) -> Opened:
        agent = current_agent(self._session) or self._translator.seen_agent
        m = agent_attr(self._session, agent, "llm")
        stt = agent_attr(self._session, agent, "stt")
        tts = agent_attr(self._session, agent, "tts")
        realtime = isinstance(m, lk_llm.RealtimeModel)
        hybrid = realtime and (stt is not None or tts is not None)
        caps = m.capabilities if realtime else None
        out_tx = lk.output_transcription_on(m) if realtime else None
        return Opened(
            at=utc(self._created),
            tenant=tenant,
            room=room,
            job_id=job_id,
            agent_name=safe_str(getattr_safe(agent, "label")),
            participant=participant,
            architecture="hybrid" if hybrid else "realtime" if realtime else "pipeline",
            stt=model_info(stt),
            llm=None if realtime else model_info(m),
            tts=model_info(tts),
            realtime=model_info(m) if realtime else None,
            sdk_versions=sdk_versions(),
            labels=dict(labels),
            transcription=TranscriptionInfo(
                realtime=realtime,
                user_transcription=caps.user_transcription if caps is not None else None,
                agent_transcription=(out_tx is not False) if realtime else None,
                session_stt=stt is not None,
                enabled_by_recorder=self._guard.enabled_by_us,
                policy=self._guard.policy,
                findings=list(self._guard.findings),
            ),
        )

    # ------------------------------------------------------------------ writer side

    def translate(self, raw: RawEvent) -> list[Record]:
        """Turn one raw event into records. Never raises: a bad event becomes a notice."""
        name, ev, t = raw
        out: list[Record] = []
        try:
            agent = self._translator.agent_changed()
            if agent is not None:
                # after start or a handoff: the new agent may bring its own realtime model
                m = agent_attr(self._session, agent, "llm")
                out.extend(self._guard.check(m, agent, t, may_raise=False))
            if name == "close":
                reason = getattr(ev.reason, "value", ev.reason)
                out.extend(self.finish(t, reason=str(reason), error=ev.error))
            else:
                out.extend(self._translator.translate(name, ev, t))
        except Exception as e:
            # type only: the exception's text (pydantic echoes input values) can be transcript
            logger.warning("auditagent: could not translate %s: %s", name, type(e).__name__)
            out.append(
                Notice(
                    at=utc(t) if isinstance(t, (int, float)) else datetime.now(timezone.utc),
                    code="untranslatable_event",
                    message=f"{name}: {type(e).__name__}",
                )
            )
        return out

    def finish(self, t: float, *, reason: str | None = None, error: Any = None) -> list[Record]:
        """The session's end: what only history holds, then its one ``closed`` record.

        ``reason=None`` (the recorder closing) takes LiveKit's close reason if the close hook
        saw one, else ``recorder_closed``. A second call adds nothing.
        """
        if self._closed:
            return []
        if reason is None:
            if self.livekit_close is not None:
                reason, error = self.livekit_close
            else:
                reason = "recorder_closed"
        out = self.reconcile()
        out.append(closed_record(t, reason=reason, error=error, usage=self._translator.usage))
        self._closed = True
        return out

    def reconcile(self) -> list[Record]:
        """Records for what ``session.history`` holds but no event delivered."""
        return reconcile(self._session, self._translator, self._paused)

    def pause_at(self, t: float) -> None:
        self._paused.pause_at(t)

    def resume_at(self, t: float) -> None:
        self._paused.resume_at(t)
