"""LiveKit AgentSession events → raw tuples (hot path) → typed records (writer).

This is the only module that knows LiveKit's event shapes (livekit-agents 1.8.x).

Hot path: each handler is a ``_Hook`` instance. LiveKit's ``EventEmitter.emit`` calls
``inspect.signature`` on every handler for every event; a plain function or bound method costs
~7 µs there, so ``_Hook`` carries a precomputed ``__signature__`` which ``inspect`` returns at once.
The handler only builds ``(name, event, time.time())`` and calls ``put``; it swallows every
``Exception`` so nothing it does can disturb the voice loop.

Writer side (``translate``/``reconcile``) reads the event objects later. LiveKit does not mutate a
ChatMessage after ``conversation_item_added`` (interruption truncation happens before the item is
added), so keeping the reference is correct; the one thing that can change between emit and
translate is the output chain, which decides whether the heard text is known, so the item hook
also keeps references to ``session.output.audio``/``transcription`` (two attribute reads).

Known limitations (documented, not guessed around):

* Generated vs heard text: LiveKit keeps the full text of an interrupted reply only in locals
  of its reply task, and a TranscriptSynchronizer stores only the played prefix. So on the first
  ``agent_state_changed`` (outputs are wired, no speech yet) the capture puts a pass-through
  ``_GeneratedTextTap`` at the head of ``session.output.transcription``; it forwards every call
  unchanged and keeps each reply's generated text, which becomes ``generated_text`` when it
  differs from what was heard. Setting the output detaches and re-attaches the chain behind it
  once, which makes a synchronizer rotate its empty segment. If an application replaces
  ``session.output.transcription`` later, the tap is gone and ``generated_text`` stays ``None``.
* Without a synchronizer an interrupted reply's stored text is the full generated text: the
  record says ``heard_text_known=False`` rather than pretending it was all heard.
* ``AgentConfigUpdate`` items (and tool items whose events were missed) have no event; they
  are recorded by ``reconcile()`` at close with ``at`` = the item's own ``created_at`` and
  ``provenance="reconciled"``. ``finish()`` (LiveKit's close event, or the recorder closing)
  runs in the writer after everything queued before it, so reconciliation sees the events'
  records first and adds only what none delivered; then the one ``closed`` record.
* Private LiveKit attributes are read only through ``_lkcompat`` (checked at attach).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from livekit import rtc
from livekit.agents import llm as lk_llm
from livekit.agents.voice import AgentSession
from livekit.agents.voice.io import TextOutput

from . import _lkcompat as lk
from .errors import TranscriptionDisabled
from .records import (
    AgentConfigUpdated,
    AgentUtterance,
    Architecture,
    Closed,
    ErrorRecord,
    Handoff,
    ModelInfo,
    Notice,
    Opened,
    Provenance,
    Record,
    TokenCounts,
    ToolCall,
    ToolResult,
    TranscriptionEnabled,
    TranscriptionInfo,
    TurnTiming,
    UsageTotal,
    UserUtterance,
    UtteranceSource,
)
from .settings import TranscriptionPolicy

logger = logging.getLogger("auditagent.capture")

RawEvent = tuple[str, Any, float]
"""(event name, event object, time.time()) — for conversation_item_added the event object is
``(event, audio_output, transcription_output, current_agent)`` so translate sees the output
chain and the agent of that moment."""

EVENTS: tuple[str, ...] = (
    "conversation_item_added",
    "user_input_transcribed",
    "function_tools_executed",
    "tool_execution_updated",
    "metrics_collected",
    "session_usage_updated",
    "agent_state_changed",
    "user_state_changed",
    "speech_created",
    "error",
    "close",
    "user_transcription_timeout",
    "agent_false_interruption",
    "overlapping_speech",
)

DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"

# ``ev`` is positional-or-keyword: LiveKit counts positional params to decide what to pass.
_HOOK_SIGNATURE = inspect.Signature(
    [inspect.Parameter("ev", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
)


class _Hook:
    """One event handler: constant work, never raises."""

    __slots__ = ("name", "put")
    __signature__ = _HOOK_SIGNATURE

    def __init__(self, name: str, put: Callable[[RawEvent], None]) -> None:
        self.name = name
        self.put = put

    def __call__(self, ev: Any) -> None:
        # try/except, not contextlib.suppress: a context manager costs more than the work itself
        try:  # noqa: SIM105
            self.put((self.name, ev, time.time()))
        except Exception:  # the voice loop must never see our failures
            pass


class _GeneratedTextTap(TextOutput):
    """A pass-through at the head of ``session.output.transcription`` that keeps the text the
    agent generated, before any TranscriptSynchronizer cuts it to what was played.

    It forwards every call unchanged; its own bookkeeping is a list append and cannot raise
    into the chain. Segments are kept in a small ring (one per reply) for ``translate``.
    """

    def __init__(self, *, next_in_chain: TextOutput) -> None:
        super().__init__(label="auditagent.GeneratedTextTap", next_in_chain=next_in_chain)
        self._current: list[str] = []
        self.segments: deque[str] = deque(maxlen=32)

    async def capture_text(self, text: str) -> None:
        try:  # noqa: SIM105 - a context manager costs more than the append
            self._current.append(text)
        except Exception:
            pass
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_text(text)

    def flush(self) -> None:
        try:
            if self._current:
                self.segments.append("".join(self._current))
                self._current = []
        except Exception:
            pass
        if self.next_in_chain is not None:
            self.next_in_chain.flush()

    def generated_for(self, heard: str) -> str | None:
        """The most recent generated segment that the heard text is a strict prefix of."""
        pending = ["".join(self._current)] if self._current else []
        want = _norm(heard)
        for seg in reversed([*self.segments, *pending]):
            got = _norm(seg)
            if got.startswith(want) and len(got) > len(want):
                with contextlib.suppress(ValueError):
                    self.segments.remove(seg)
                return seg
        return None


def _norm(text: str) -> str:
    return " ".join(text.split())


class _StateHook(_Hook):
    """agent_state_changed: on the first one (outputs are wired by then, no speech yet), put the
    generated-text tap at the head of the transcription chain."""

    __slots__ = ("capture",)

    def __init__(self, name: str, put: Callable[[RawEvent], None], capture: Any) -> None:
        super().__init__(name, put)
        self.capture = capture

    def __call__(self, ev: Any) -> None:
        try:
            if self.capture._tap is None:
                self.capture._install_tap()
            self.put((self.name, ev, time.time()))
        except Exception:
            pass


class _ItemHook(_Hook):
    """conversation_item_added: also pin the output chain and the agent as they are now."""

    __slots__ = ("session",)

    def __init__(self, name: str, put: Callable[[RawEvent], None], session: Any) -> None:
        super().__init__(name, put)
        self.session = session

    def __call__(self, ev: Any) -> None:
        try:
            s = self.session
            out = s.output
            agent = lk.current_agent(s)
            self.put((self.name, (ev, out.audio, out.transcription, agent), time.time()))
        except Exception:
            pass


class _CloseHook(_Hook):
    """close: also tell the recorder, which may be waiting for it (job shutdown), at once.

    The reason is kept on the capture too, so a close event that could not be queued (queue
    full) still gives the session its LiveKit close reason.
    """

    __slots__ = ("capture",)

    def __init__(self, name: str, put: Callable[[RawEvent], None], capture: Any) -> None:
        super().__init__(name, put)
        self.capture = capture

    def __call__(self, ev: Any) -> None:
        # each step on its own: a failed note must not cost the event (no suppress(): as _Hook)
        try:  # noqa: SIM105
            self.capture._note_close(ev)
        except Exception:
            pass
        try:  # noqa: SIM105
            self.put((self.name, ev, time.time()))
        except Exception:
            pass


def _dt(t: float | None) -> datetime | None:
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _utc(t: float) -> datetime:
    return _dt(t) or datetime.now(timezone.utc)


def _model_info(obj: Any) -> ModelInfo | None:
    if obj is None:
        return None
    model = _safe_str(getattr_safe(obj, "model"))
    provider = _safe_str(getattr_safe(obj, "provider"))
    return ModelInfo(model=model, provider=provider)


def getattr_safe(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _safe_str(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return str(v)
    except Exception:
        return None


def _agent_attr(session: Any, agent: Any, name: str) -> Any:
    """The component an agent actually uses: its own override, else the session's."""
    if agent is not None:
        v = getattr_safe(agent, name)
        if _is_given(v):
            return v
    return getattr_safe(session, name)


def _is_given(v: Any) -> bool:
    from livekit.agents.utils import is_given

    return v is not None and is_given(v)


def _current_agent(session: Any) -> Any:
    return lk.current_agent(session)


def _agent_name(agent: Any) -> str | None:
    """An agent's name: its label (LiveKit's label is its id), else its class name."""
    if agent is None:
        return None
    label = _safe_str(getattr_safe(agent, "label")) or _safe_str(getattr_safe(agent, "id"))
    return label or type(agent).__name__


def _synchronized(audio_out: Any, text_out: Any) -> bool:
    """Whether an enabled TranscriptSynchronizer sits in the output chain."""
    kinds = lk.synchronizer_kinds()
    for head in (audio_out, text_out):
        node, depth = head, 0
        while node is not None and depth < 16:
            if isinstance(node, kinds):
                return lk.synchronizer_enabled(node)
            node = getattr_safe(node, "next_in_chain")
            depth += 1
    return False


def _sdk_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for dist in importlib.metadata.distributions():
            name = (dist.metadata["Name"] or "").lower()
            if name in ("livekit-agents", "livekit", "auditagent") or name.startswith(
                "livekit-plugins-"
            ):
                out[name] = dist.version
    except Exception:
        logger.debug("could not list installed versions", exc_info=True)
    return out


def _text_of(msg: Any) -> str:
    try:
        t = msg.text_content
        return t if isinstance(t, str) else ""
    except Exception:
        return ""


class _PendingTool:
    __slots__ = ("call", "ended_at", "message", "output", "started_at", "status")

    def __init__(self) -> None:
        self.call: Any = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.message: str | None = None
        self.status: str | None = None
        self.output: Any = None


class SessionCapture:
    """Hooks one AgentSession and turns what it emits into audit records.

    Canonical user text: the user ``ChatMessage``. A pipeline emits the final STT transcript
    and then a ChatMessage for the same utterance; finals without an item id are buffered and
    their language/speaker merged into the next user ChatMessage. A realtime model's own
    transcript carries the ChatMessage's id and is dropped in favour of it. A session-level STT
    on a realtime model stores no ChatMessage, so those finals become ``user_utterance``
    records themselves (source ``stt``).
    """

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
        self._policy: TranscriptionPolicy = policy
        self._record_interims = record_interims
        self._hooks: list[tuple[str, _Hook]] = []
        self._installed = False
        self._closed = False
        # writer-side state
        self._seen_items: set[str] = set()
        self._seen_calls: set[str] = set()
        self._seen_results: set[str] = set()
        self._tools: dict[str, _PendingTool] = {}
        self._pending_finals: list[tuple[Any, float]] = []
        self._checked_models: dict[int, Any] = {}
        self._seen_agent: Any = None
        self._usage: Any = None
        self._user_speech: tuple[float | None, float | None] = (None, None)
        self._findings: list[str] = []
        self._enabled_by_us = False
        # session-STT finals already recorded on a realtime model, in case LiveKit later stores
        # the same words as a user ChatMessage (it does when a session closes mid-turn)
        self._rt_stt_texts: list[str] = []
        self._tap: _GeneratedTextTap | None = None
        # recording paused (SessionRecording.pause): [start, end) wall-clock windows
        self._paused: list[list[float]] = []
        self._tap_tried = False
        # user items a realtime model's own transcription produced (so they were spoken)
        self._transcribed_ids: set[str] = set()
        # agent id -> name, from every agent seen (for handoffs whose old agent is gone)
        self._agent_names: dict[str, str] = {}
        # LiveKit's close, as the hot path saw it: (reason, error); the recorder waits on
        # close_seen at shutdown so the session's own close reason is the one recorded
        self.close_seen = asyncio.Event()
        self.livekit_close: tuple[str, Any] | None = None

    # ------------------------------------------------------------------ hot path wiring

    def install(self) -> None:
        if self._installed:
            return
        for name in EVENTS:
            hook: _Hook
            if name == "conversation_item_added":
                hook = _ItemHook(name, self._put, self._session)
            elif name == "agent_state_changed":
                hook = _StateHook(name, self._put, self)
            elif name == "close":
                hook = _CloseHook(name, self._put, self)
            else:
                hook = _Hook(name, self._put)
            if name == "metrics_collected":
                # AgentSession.on() only adds a deprecation warning for this event; metrics
                # still flow and carry the STT/TTS/EOU figures ChatMessage.metrics lacks
                rtc.EventEmitter[str].on(self._session, name, hook)  # type: ignore[arg-type]
            else:
                self._session.on(name, hook)  # type: ignore[arg-type]
            self._hooks.append((name, hook))
        self._installed = True

    def _install_tap(self) -> None:
        """Once per session, synchronously, before the first reply: O(1), no I/O."""
        if self._tap_tried:
            return
        self._tap_tried = True
        out = self._session.output
        current = out.transcription
        if current is None:
            return  # no transcript output: nothing is truncated for us to miss
        tap = _GeneratedTextTap(next_in_chain=current)
        # The setter detaches and re-attaches the chain behind the tap; with no speech yet that
        # only makes a TranscriptSynchronizer rotate its (empty) segment.
        out.transcription = tap
        self._tap = tap

    def uninstall(self) -> None:
        for name, hook in self._hooks:
            try:
                self._session.off(name, hook)  # type: ignore[arg-type]
            except Exception:
                logger.debug("could not remove handler for %s", name, exc_info=True)
        self._hooks.clear()
        self._installed = False

    @property
    def closed(self) -> bool:
        """Whether the ``closed`` record was built (writer side)."""
        return self._closed

    @property
    def session(self) -> AgentSession[Any]:
        return self._session

    def _note_close(self, ev: Any) -> None:
        """Hot path, from the close hook: two attribute reads and an Event.set()."""
        reason = getattr(ev, "reason", None)
        self.livekit_close = (str(getattr(reason, "value", reason)), getattr(ev, "error", None))
        self.close_seen.set()

    def compat_notice(self) -> Notice | None:
        """A notice when LiveKit lacks a private attribute the capture relies on."""
        missing = lk.missing_for_session(self._session)
        for m in (self._session.llm,):
            missing += lk.missing_for_model(m)
        if not missing:
            return None
        logger.warning(
            "auditagent: this LiveKit version lacks %s; some capture falls back (see "
            "auditagent/_lkcompat.py)",
            ", ".join(missing),
        )
        return Notice(
            at=datetime.now(timezone.utc),
            code="livekit_internals_missing",
            message="LiveKit lacks attributes the recorder reads; some capture falls back",
            details={"missing": missing},
        )

    # ------------------------------------------------------------------ attach-time checks

    def check_transcription(self, *, agent: Any = None) -> list[Record]:
        """Check every realtime model the session can use now; apply the policy.

        Raises TranscriptionDisabled under ``enforce`` when a model cannot produce the text.
        ``agent`` is the Agent about to be passed to ``session.start`` when the caller knows it.
        """
        out: list[Record] = []
        now = time.time()
        agent = agent if agent is not None else _current_agent(self._session)
        out.extend(self._check_model(self._session.llm, None, now, may_raise=True))
        if agent is not None:
            self._seen_agent = agent
            out.extend(
                self._check_model(
                    _agent_attr(self._session, agent, "llm"), agent, now, may_raise=True
                )
            )
        return out

    def _check_model(self, m: Any, agent: Any, now: float, *, may_raise: bool) -> list[Record]:
        if not isinstance(m, lk_llm.RealtimeModel) or id(m) in self._checked_models:
            return []
        self._checked_models[id(m)] = m
        info = _model_info(m) or ModelInfo()
        label = f"{info.provider or '?'}/{info.model or '?'}"
        caps = m.capabilities
        input_off = not caps.user_transcription
        output_off = lk.output_transcription_on(m) is False
        has_stt = _agent_attr(self._session, agent, "stt") is not None
        if not input_off and not output_off:
            return []
        if input_off and has_stt and not output_off:
            # a session STT transcribes the user when the realtime model does not
            self._findings.append(f"{label}: input transcription off, session STT used")
            return []
        if self._policy == "off":
            self._findings.append(f"{label}: transcription off, policy off")
            return []
        agent_id = _safe_str(getattr_safe(agent, "id"))
        agent_name = _safe_str(getattr_safe(agent, "label"))
        # the user is transcribed by the session STT when there is one
        need_input = input_off and not has_stt
        if need_input and not output_off and self._can_enable(m):
            if self._policy == "enforce":
                tmodel = self._enable_input_transcription(m)
                if tmodel is not None:
                    self._findings.append(f"{label}: input transcription turned on ({tmodel})")
                    self._enabled_by_us = True
                    return [
                        TranscriptionEnabled(
                            at=_utc(now),
                            model=info,
                            transcription_model=tmodel,
                            directions=["input"],
                            agent_id=agent_id,
                            agent_name=agent_name,
                        )
                    ]
            else:
                msg = f"{label} has input audio transcription off; user speech is not recorded"
                logger.warning("auditagent: %s", msg)
                self._findings.append(msg)
                return [self._transcription_notice(now, msg, label, agent_id)]
        connected = False
        if lk.is_gemini_live(m) and self._policy == "enforce":
            # Gemini reads these settings when its session connects, which is after attach
            connected = lk.gemini_connected(m)
            done = lk.enable_gemini_transcription(m, input=need_input, output=output_off)
            if done:
                what = " and ".join(done)
                self._findings.append(f"{label}: {what} transcription turned on before connect")
                self._enabled_by_us = True
                return [
                    TranscriptionEnabled(
                        at=_utc(now),
                        model=info,
                        transcription_model=info.model or label,
                        directions=done,
                        agent_id=agent_id,
                        agent_name=agent_name,
                    )
                ]
        what = " and ".join(x for x, off in (("input", input_off), ("output", output_off)) if off)
        msg = f"realtime model {label} has {what} audio transcription off"
        if connected:
            msg += " and its session is already connected, too late to turn it on"
        self._findings.append(msg)
        if self._policy == "enforce" and may_raise:
            raise TranscriptionDisabled(msg, fix=self._fix_hint(m, input_off, output_off))
        if self._policy == "enforce":
            logger.error("auditagent: %s; the audit record will lack that text", msg)
        else:
            logger.warning("auditagent: %s", msg)
        return [self._transcription_notice(now, msg, label, agent_id)]

    @staticmethod
    def _transcription_notice(now: float, msg: str, label: str, agent_id: str | None) -> Notice:
        return Notice(
            at=_utc(now),
            code="transcription_off",
            message=msg,
            details={"model": label, "agent_id": agent_id},
        )

    @staticmethod
    def _fix_hint(m: Any, input_off: bool, output_off: bool) -> str:
        mod = type(m).__module__
        if "google" in mod:
            args = ", ".join(
                f"{n}_audio_transcription=types.AudioTranscriptionConfig()"
                for n, off in (("input", input_off), ("output", output_off))
                if off
            )
            return (
                f"attach the recorder before session.start(), or construct it as "
                f"google.realtime.RealtimeModel(..., {args})"
            )
        return (
            "use a realtime model with transcription on, add a session STT, "
            "or set AUDITAGENT_TRANSCRIPTION_POLICY=warn"
        )

    @staticmethod
    def _can_enable(m: Any) -> bool:
        try:
            return "input_audio_transcription" in inspect.signature(m.update_options).parameters
        except (AttributeError, TypeError, ValueError):
            return False

    @staticmethod
    def _enable_input_transcription(m: Any) -> str | None:
        value: Any
        try:
            from openai.types.beta.realtime.session import InputAudioTranscription

            value = InputAudioTranscription(model=DEFAULT_TRANSCRIPTION_MODEL)
        except ImportError:
            value = {"model": DEFAULT_TRANSCRIPTION_MODEL}
        try:
            m.update_options(input_audio_transcription=value)
        except Exception:
            logger.warning(
                "auditagent: update_options(input_audio_transcription) failed", exc_info=True
            )
            return None
        return DEFAULT_TRANSCRIPTION_MODEL if m.capabilities.user_transcription else None

    def _architecture(self, agent: Any) -> tuple[Architecture, Any, Any, Any]:
        m = _agent_attr(self._session, agent, "llm")
        stt = _agent_attr(self._session, agent, "stt")
        tts = _agent_attr(self._session, agent, "tts")
        if isinstance(m, lk_llm.RealtimeModel):
            return ("hybrid" if (stt is not None or tts is not None) else "realtime"), m, stt, tts
        return "pipeline", m, stt, tts

    def opened(
        self,
        *,
        tenant: str,
        participant: str | None,
        labels: dict[str, str],
        room: str | None,
        job_id: str | None,
    ) -> Opened:
        agent = _current_agent(self._session) or self._seen_agent
        arch, m, stt, tts = self._architecture(agent)
        realtime = isinstance(m, lk_llm.RealtimeModel)
        caps = m.capabilities if realtime else None
        out_tx = lk.output_transcription_on(m) if realtime else None
        return Opened(
            at=_utc(self._created),
            tenant=tenant,
            room=room,
            job_id=job_id,
            agent_name=_safe_str(getattr_safe(agent, "label")),
            participant=participant,
            architecture=arch,
            stt=_model_info(stt),
            llm=None if realtime else _model_info(m),
            tts=_model_info(tts),
            realtime=_model_info(m) if realtime else None,
            sdk_versions=_sdk_versions(),
            labels=dict(labels),
            transcription=TranscriptionInfo(
                realtime=realtime,
                user_transcription=caps.user_transcription if caps is not None else None,
                agent_transcription=(out_tx is not False) if realtime else None,
                session_stt=stt is not None,
                enabled_by_recorder=self._enabled_by_us,
                policy=self._policy,
                findings=list(self._findings),
            ),
        )

    # ------------------------------------------------------------------ writer side

    def translate(self, raw: RawEvent) -> list[Record]:
        """Turn one raw event into records. Never raises: a bad event becomes a notice."""
        name, ev, t = raw
        out: list[Record] = []
        try:
            out.extend(self._agent_changed(t))
            fn = getattr(self, "_on_" + name, None)
            if fn is not None:
                out.extend(fn(ev, t))
        except Exception as e:
            # type only: the exception's text (pydantic echoes input values) can be transcript
            logger.warning("auditagent: could not translate %s: %s", name, type(e).__name__)
            out.append(
                Notice(
                    at=_utc(t) if isinstance(t, (int, float)) else datetime.now(timezone.utc),
                    code="untranslatable_event",
                    message=f"{name}: {type(e).__name__}",
                )
            )
        return out

    def _agent_changed(self, t: float) -> list[Record]:
        agent = _current_agent(self._session)
        if agent is None or agent is self._seen_agent:
            return []
        self._seen_agent = agent
        self._remember_agent(agent)
        # after start or a handoff: the new agent may bring its own realtime model
        return self._check_model(
            _agent_attr(self._session, agent, "llm"), agent, t, may_raise=False
        )

    def _remember_agent(self, agent: Any) -> None:
        agent_id = _safe_str(getattr_safe(agent, "id"))
        name = _agent_name(agent)
        if agent_id and name:
            self._agent_names[agent_id] = name

    def _uses_realtime(self) -> bool:
        agent = _current_agent(self._session) or self._seen_agent
        return isinstance(_agent_attr(self._session, agent, "llm"), lk_llm.RealtimeModel)

    # --- conversation items

    def _on_conversation_item_added(self, ev: Any, t: float) -> list[Record]:
        audio_out = text_out = agent = None
        if isinstance(ev, tuple):
            ev, audio_out, text_out, *rest = ev
            agent = rest[0] if rest else None
        item = ev.item
        kind = getattr(item, "type", None)
        if kind == "message":
            return self._message(item, t, audio_out=audio_out, text_out=text_out, live=True)
        if kind == "agent_handoff":
            if agent is not None:
                self._remember_agent(agent)
            return self._handoff(item, t)
        return []

    def _message(
        self, msg: Any, t: float, *, audio_out: Any, text_out: Any, live: bool
    ) -> list[Record]:
        # Everything is built before the item is marked as seen: a failure on the way leaves
        # it for reconcile() at close instead of losing it.
        if msg.id in self._seen_items:
            return []
        out: list[Record] = []
        metrics = dict(getattr(msg, "metrics", None) or {})
        at = _utc(t) if live else _utc(msg.created_at)
        provenance: Provenance = "live" if live else "reconciled"
        claimed_finals = False
        if msg.role == "user":
            text = _text_of(msg)
            if self._claimed_by_stt_finals(text):
                self._seen_items.add(msg.id)
                return []
            language = speaker = None
            for tr, _ in self._pending_finals:
                language = language or _safe_str(getattr_safe(tr, "language"))
                speaker = speaker or _safe_str(getattr_safe(tr, "speaker_id"))
            spoken = self._spoken(msg, metrics)
            if not live:
                source: UtteranceSource = "history"
            elif not spoken:
                source = "text"
            else:
                source = "realtime" if self._uses_realtime() else "stt"
            started, ended = self._user_speech if spoken and live else (None, None)
            out.append(
                UserUtterance(
                    at=at,
                    text=text,
                    language=language,
                    speaker_id=speaker,
                    confidence=msg.transcript_confidence,
                    started_at=_dt(metrics.get("started_speaking_at", started)),
                    ended_at=_dt(metrics.get("stopped_speaking_at", ended)),
                    item_id=msg.id,
                    final=True,
                    interrupted=bool(msg.interrupted),
                    source=source,
                    input_mode="speech" if spoken else "text",
                    provenance=provenance,
                )
            )
            claimed_finals = True
        elif msg.role == "assistant":
            text = _text_of(msg)
            interrupted = bool(msg.interrupted)
            if not interrupted:
                # An interrupted reply is added after the interruption settles, and the STT
                # final of the words that interrupted it can already be pending: its user
                # message still follows, so the final is not an unclaimed one.
                out.extend(self._flush_finals())
            known = True
            if interrupted and audio_out is not None and not _synchronized(audio_out, text_out):
                known = False
            if not live:
                # reconciled at close: the chain of that moment is unknown
                known = not interrupted
            generated = None
            if interrupted and known and self._tap is not None:
                generated = self._tap.generated_for(text)
            out.append(
                AgentUtterance(
                    at=at,
                    text=text,
                    generated_text=generated,
                    heard_text_known=known,
                    interrupted=interrupted,
                    started_at=_dt(metrics.get("started_speaking_at")),
                    ended_at=_dt(metrics.get("stopped_speaking_at")),
                    item_id=msg.id,
                    source="live" if live else "history",
                    provenance=provenance,
                )
            )
        else:
            return []
        timing = self._message_timing(msg, metrics, at, provenance)
        if timing is not None:
            out.append(timing)
        self._seen_items.add(msg.id)
        if claimed_finals:
            self._pending_finals.clear()
        return out

    def _spoken(self, msg: Any, metrics: dict[str, Any]) -> bool:
        """Whether a user message was speech, not typed text or ``user_input``.

        LiveKit 1.8 sets ``transcript_confidence`` on every transcribed user message (1.0 when
        the provider gives no score: "an unscored transcript is still transcribed speech") and
        leaves it None for ``generate_reply(user_input=...)``, which text input also uses.
        """
        if msg.transcript_confidence is not None or self._pending_finals:
            return True
        if msg.id in self._transcribed_ids:
            return True
        return any(k in metrics for k in ("started_speaking_at", "transcription_delay"))

    @staticmethod
    def _message_timing(
        msg: Any, m: dict[str, Any], at: datetime, provenance: Provenance
    ) -> TurnTiming | None:
        keys = (
            "transcription_delay",
            "end_of_turn_delay",
            "on_user_turn_completed_delay",
            "llm_node_ttft",
            "tts_node_ttfb",
            "e2e_latency",
            "playback_latency",
        )
        if not any(k in m for k in keys):
            return None

        def f(k: str) -> float | None:
            v = m.get(k)
            return float(v) if isinstance(v, (int, float)) else None

        ids = m.get("provider_request_ids")
        request_id = ids[0] if isinstance(ids, list) and ids and isinstance(ids[0], str) else None
        return TurnTiming(
            at=at,
            item_id=msg.id,
            role=msg.role if msg.role in ("user", "assistant") else None,
            transcription_delay=f("transcription_delay"),
            end_of_utterance_delay=f("end_of_turn_delay"),
            on_user_turn_completed_delay=f("on_user_turn_completed_delay"),
            llm_ttft=f("llm_node_ttft"),
            tts_ttfb=f("tts_node_ttfb"),
            e2e_latency=f("e2e_latency"),
            playback_latency=f("playback_latency"),
            source="chat_message",
            request_id=request_id,
            provenance=provenance,
        )

    def _handoff(self, item: Any, t: float, *, live: bool = True) -> list[Record]:
        if item.id in self._seen_items:
            return []

        def name(agent_id: str | None) -> str | None:
            # an agent's id is its name in LiveKit; an id never seen live names it as well
            return None if agent_id is None else self._agent_names.get(agent_id, agent_id)

        record = Handoff(
            at=_utc(t) if live else _utc(item.created_at),
            old_agent_id=item.old_agent_id,
            new_agent_id=item.new_agent_id,
            old_agent_name=name(item.old_agent_id),
            new_agent_name=name(item.new_agent_id),
            item_id=item.id,
            provenance="live" if live else "reconciled",
        )
        self._seen_items.add(item.id)
        return [record]

    # --- user transcripts

    def _on_user_input_transcribed(self, ev: Any, t: float) -> list[Record]:
        if not ev.is_final:
            if self._record_interims and ev.transcript:
                return [self._transcript_record(ev, t, final=False)]
            return []
        if ev.item_id is not None:
            # a realtime model's own transcript: the ChatMessage with this id is canonical
            self._transcribed_ids.add(ev.item_id)
            return []
        if self._uses_realtime():
            # session STT on a realtime model: LiveKit stores no user ChatMessage
            self._rt_stt_texts.append(ev.transcript)
            return [self._transcript_record(ev, t, final=True)]
        self._pending_finals.append((ev, t))
        return []

    def _claimed_by_stt_finals(self, text: str) -> bool:
        """Whether a user message repeats session-STT finals already recorded (realtime)."""
        if not self._rt_stt_texts:
            return False
        norm = " ".join(text.split())
        if norm == " ".join(" ".join(self._rt_stt_texts).split()):
            self._rt_stt_texts.clear()
            return True
        for i, prior in enumerate(self._rt_stt_texts):
            if norm == " ".join(prior.split()):
                del self._rt_stt_texts[: i + 1]
                return True
        return False

    def _transcript_record(self, ev: Any, t: float, *, final: bool) -> UserUtterance:
        started, ended = self._user_speech
        return UserUtterance(
            at=_utc(t),
            text=ev.transcript,
            language=_safe_str(ev.language),
            speaker_id=ev.speaker_id,
            started_at=_dt(started),
            ended_at=_dt(ended) if final else None,
            item_id=ev.item_id,
            final=final,
            source="stt" if ev.item_id is None else "realtime",
            input_mode="speech",
        )

    def _flush_finals(self) -> list[Record]:
        # finals that no user ChatMessage claimed (e.g. a turn LiveKit dropped) are kept as-is
        out: list[Record] = []
        for ev, t in self._pending_finals:
            try:
                out.append(self._transcript_record(ev, t, final=True))
            except Exception as e:
                # one bad transcript must not take the reply it is flushed with down too
                out.append(
                    Notice(
                        at=_utc(t),
                        code="untranslatable_event",
                        message=f"user_input_transcribed: {type(e).__name__}",
                    )
                )
        self._pending_finals.clear()
        return out

    def _on_user_state_changed(self, ev: Any, t: float) -> list[Record]:
        if ev.new_state == "speaking":
            self._user_speech = (ev.created_at, None)
        elif ev.old_state == "speaking":
            self._user_speech = (self._user_speech[0], ev.created_at)
        return []

    # --- tools

    def _tool(self, call_id: str) -> _PendingTool:
        p = self._tools.get(call_id)
        if p is None:
            p = self._tools[call_id] = _PendingTool()
        return p

    def _tool_call_record(
        self, call: Any, t: float, *, provenance: Provenance = "live"
    ) -> list[Record]:
        if call.call_id in self._seen_calls:
            return []
        record = ToolCall(
            at=_utc(t),
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
            group_id=call.group_id,
            item_id=call.id,
            provenance=provenance,
        )
        self._seen_calls.add(call.call_id)
        return [record]

    def _on_tool_execution_updated(self, ev: Any, t: float) -> list[Record]:
        u = ev.update
        if u.type == "tool_call_started":
            p = self._tool(u.function_call.call_id)
            p.call, p.started_at = u.function_call, t
            return self._tool_call_record(u.function_call, t)
        if u.type == "tool_call_ended":
            p = self._tool(u.call_id)
            p.ended_at, p.message, p.status = t, u.message, u.status
            return self._maybe_result(u.call_id, t)
        return []

    def _on_function_tools_executed(self, ev: Any, t: float) -> list[Record]:
        out: list[Record] = []
        for call, output in ev.zipped():
            out.extend(self._tool_call_record(call, t))
            p = self._tool(call.call_id)
            p.call = p.call or call
            p.output = output
            out.extend(self._maybe_result(call.call_id, t))
        return out

    def _maybe_result(
        self, call_id: str, t: float, *, force: bool = False, provenance: Provenance = "live"
    ) -> list[Record]:
        p = self._tools.get(call_id)
        if p is None or call_id in self._seen_results:
            return []
        if not force and (p.output is None or p.status is None):
            return []
        o = p.output
        errored = p.status == "error" or bool(getattr(o, "is_error", False))
        duration = (
            p.ended_at - p.started_at
            if p.ended_at is not None and p.started_at is not None
            else None
        )
        name = getattr(p.call, "name", None) or getattr(o, "name", "") or ""
        record = ToolResult(
            at=_utc(p.ended_at or t),
            call_id=call_id,
            name=name,
            output=None if p.status == "error" else p.message,
            is_error=errored,
            status=p.status,
            exception=p.message if p.status == "error" else None,
            model_told=getattr(o, "output", None),
            duration_s=duration,
            item_id=getattr(o, "id", None),
            provenance=provenance,
        )
        self._seen_results.add(call_id)
        return [record]

    # --- metrics

    def _on_metrics_collected(self, ev: Any, t: float) -> list[Record]:
        m = ev.metrics
        kind = getattr(m, "type", "")
        meta = getattr(m, "metadata", None)
        model = ModelInfo(model=meta.model_name, provider=meta.model_provider) if meta else None
        common: dict[str, Any] = {
            "at": _utc(t),
            "model": model,
            "speech_id": getattr(m, "speech_id", None),
        }
        if kind == "llm_metrics":
            return [
                TurnTiming(
                    **common,
                    source="llm_metrics",
                    request_id=_safe_str(getattr(m, "request_id", None)) or None,
                    llm_ttft=m.ttft,
                    llm_duration=m.duration,
                    tokens=TokenCounts(
                        prompt=m.prompt_tokens, completion=m.completion_tokens, total=m.total_tokens
                    ),
                )
            ]
        if kind == "tts_metrics":
            return [
                TurnTiming(
                    **common, source="tts_metrics", tts_ttfb=m.ttfb, audio_out_s=m.audio_duration
                )
            ]
        if kind == "stt_metrics":
            return [TurnTiming(**common, source="stt_metrics", audio_in_s=m.audio_duration)]
        if kind == "eou_metrics":
            return [
                TurnTiming(
                    **common,
                    source="eou_metrics",
                    end_of_utterance_delay=m.end_of_utterance_delay,
                    transcription_delay=m.transcription_delay,
                    on_user_turn_completed_delay=m.on_user_turn_completed_delay,
                )
            ]
        if kind == "realtime_model_metrics":
            reported = isinstance(m.ttft, (int, float)) and m.ttft >= 0
            return [
                TurnTiming(
                    **common,
                    source="realtime_metrics",
                    request_id=_safe_str(getattr(m, "request_id", None)) or None,
                    realtime_ttft=m.ttft if reported else None,
                    # LiveKit's RealtimeModelMetrics uses -1 for "no first-audio time"
                    not_reported=(
                        {}
                        if reported
                        else {"realtime_ttft": "the provider reports no first-audio time"}
                    ),
                    llm_duration=m.duration,
                    tokens=TokenCounts(
                        prompt=m.input_tokens, completion=m.output_tokens, total=m.total_tokens
                    ),
                )
            ]
        # VAD / interruption / avatar metrics are operational, not part of the audit trail
        return []

    def _on_session_usage_updated(self, ev: Any, t: float) -> list[Record]:
        self._usage = ev.usage
        return []

    # --- errors, notices, close

    def _on_error(self, ev: Any, t: float) -> list[Record]:
        err = ev.error
        inner = getattr(err, "error", None)
        message = str(inner) if isinstance(inner, BaseException) else repr(err)
        src = ev.source
        return [
            ErrorRecord(
                at=_utc(t),
                source=type(src).__name__,
                model=_model_info(src),
                recoverable=getattr(err, "recoverable", None),
                message=message,
            )
        ]

    def _on_user_transcription_timeout(self, ev: Any, t: float) -> list[Record]:
        return [
            Notice(
                at=_utc(t),
                code="user_transcription_timeout",
                message="user speech produced no transcript",
                details={
                    "speech_duration": ev.speech_duration,
                    "vad_speech_started_at": ev.vad_speech_started_at,
                },
            )
        ]

    def _on_agent_false_interruption(self, ev: Any, t: float) -> list[Record]:
        return [
            Notice(
                at=_utc(t),
                code="false_interruption",
                message="agent speech paused by noise, not user speech",
                details={"resumed": bool(ev.resumed)},
            )
        ]

    def _on_overlapping_speech(self, ev: Any, t: float) -> list[Record]:
        return [
            Notice(
                at=_utc(t),
                code="overlapping_speech",
                message="user spoke while the agent was speaking",
                details={"detected_at": getattr(ev, "detected_at", None)},
            )
        ]

    def _on_close(self, ev: Any, t: float) -> list[Record]:
        reason = getattr(ev.reason, "value", ev.reason)
        return self.finish(t, reason=str(reason), error=ev.error)

    def finish(self, t: float, *, reason: str | None = None, error: Any = None) -> list[Record]:
        """The session's end: what only history holds, then its one ``closed`` record.

        Runs on the writer after everything queued before it, so reconciliation adds only
        what no event delivered. ``reason=None`` (the recorder closing) takes LiveKit's close
        reason if the close hook saw one, else ``recorder_closed``. A second call adds nothing.
        """
        if self._closed:
            return []
        if reason is None:
            if self.livekit_close is not None:
                reason, error = self.livekit_close
            else:
                reason = "recorder_closed"
        out = self.reconcile()
        inner = getattr(error, "error", None)
        out.append(
            Closed(
                at=_utc(t),
                reason=reason,
                error=None if error is None else (str(inner) if inner is not None else repr(error)),
                usage=self._usage_totals(),
            )
        )
        self._closed = True
        return out

    def _usage_totals(self) -> list[UsageTotal]:
        out: list[UsageTotal] = []
        for u in getattr(self._usage, "model_usage", None) or []:
            try:
                d = u.model_dump()
            except Exception:
                continue
            values = {
                k: float(v)
                for k, v in d.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v
            }
            out.append(
                UsageTotal(
                    type=str(d.get("type", "")),
                    model=d.get("model"),
                    provider=d.get("provider"),
                    values=values,
                )
            )
        return out

    # ------------------------------------------------------------------ reconcile

    def pause_at(self, t: float) -> None:
        self._paused.append([t, float("inf")])

    def resume_at(self, t: float) -> None:
        if self._paused and self._paused[-1][1] == float("inf"):
            self._paused[-1][1] = t

    def _was_paused(self, created_at: Any) -> bool:
        if not self._paused or not isinstance(created_at, (int, float)):
            return False
        return any(start <= created_at < end for start, end in self._paused)

    def reconcile(self) -> list[Record]:
        """Records for what ``session.history`` holds but no event delivered."""
        out: list[Record] = []
        try:
            items: Iterable[Any] = list(self._session.history.items)
        except Exception:
            items = []
        for item in items:
            if self._was_paused(getattr(item, "created_at", None)):
                continue  # said while recording was paused: deliberately not kept
            try:
                out.extend(self._reconcile_item(item))
            except Exception as e:
                logger.warning(
                    "auditagent: could not reconcile a history item: %s", type(e).__name__
                )
        out.extend(self._flush_finals())
        # tool calls whose batch never completed (cancelled, session closed mid-call)
        for call_id in list(self._tools):
            out.extend(self._maybe_result(call_id, time.time(), force=True))
        return out

    def _reconcile_item(self, item: Any) -> list[Record]:
        kind = getattr(item, "type", None)
        if kind == "message":
            return self._message(item, item.created_at, audio_out=None, text_out=None, live=False)
        if kind == "agent_handoff":
            return self._handoff(item, item.created_at, live=False)
        if kind == "function_call":
            if item.call_id in self._seen_calls:
                return []
            p = self._tool(item.call_id)
            p.call = p.call or item
            return self._tool_call_record(item, item.created_at, provenance="reconciled")
        if kind == "function_call_output":
            if item.call_id in self._seen_results:
                return []
            p = self._tool(item.call_id)
            p.output = item
            return self._maybe_result(
                item.call_id, item.created_at, force=True, provenance="reconciled"
            )
        if kind == "agent_config_update":
            if item.id in self._seen_items:
                return []
            record = AgentConfigUpdated(
                at=_utc(item.created_at),
                instructions=item.instructions,
                tools_added=list(item.tools_added or []),
                tools_removed=list(item.tools_removed or []),
                item_id=item.id,
                provenance="reconciled",
            )
            self._seen_items.add(item.id)
            return [record]
        return []
