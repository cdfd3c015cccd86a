"""LiveKit events → audit records (on the writer, never on the voice loop).

Canonical user text: the user ``ChatMessage``. A pipeline emits the final STT transcript and
then a ChatMessage for the same utterance; finals without an item id are buffered and their
language/speaker merged into the next user ChatMessage. A realtime model's own transcript
carries the ChatMessage's id and is dropped in favour of it. A session-level STT on a realtime
model stores no ChatMessage, so those finals become ``user_utterance`` records themselves
(source ``stt``).

LiveKit does not mutate a ChatMessage after ``conversation_item_added`` (interruption
truncation happens before the item is added), so the hook keeps the reference; what can change
between emit and translate is the output chain, which decides whether the heard text is known,
so the hook also pins ``session.output.audio``/``transcription`` (see hooks.py).
"""

from __future__ import annotations

from typing import Any

from livekit.agents import llm as lk_llm

from ..records import (
    AgentUtterance,
    ErrorRecord,
    Handoff,
    Notice,
    Provenance,
    Record,
    UserUtterance,
    UtteranceSource,
)
from . import timing
from .fields import (
    agent_attr,
    agent_name,
    current_agent,
    dt,
    getattr_safe,
    model_info,
    safe_str,
    text_of,
    utc,
)
from .tap import GeneratedTextTap, synchronized
from .tools import ToolLedger


class Translator:
    """One session's conversation state on the writer side, and the event → record rules."""

    def __init__(self, session: Any, *, record_interims: bool) -> None:
        self._session = session
        self._record_interims = record_interims
        self.tools = ToolLedger()
        self.seen_items: set[str] = set()
        self.seen_agent: Any = None
        self.usage: Any = None
        self.tap: GeneratedTextTap | None = None
        self._pending_finals: list[tuple[Any, float]] = []
        self._user_speech: tuple[float | None, float | None] = (None, None)
        # session-STT finals already recorded on a realtime model, in case LiveKit later stores
        # the same words as a user ChatMessage (it does when a session closes mid-turn)
        self._rt_stt_texts: list[str] = []
        # user items a realtime model's own transcription produced (so they were spoken)
        self._transcribed_ids: set[str] = set()
        # agent id -> name, from every agent seen (for handoffs whose old agent is gone)
        self._agent_names: dict[str, str] = {}

    def translate(self, name: str, ev: Any, t: float) -> list[Record]:
        """Records for one event (may raise: the caller turns a failure into a notice)."""
        fn = getattr(self, "_on_" + name, None)
        return fn(ev, t) if fn is not None else []

    def agent_changed(self) -> Any:
        """The running agent when it is one not seen before (after start or a handoff)."""
        agent = current_agent(self._session)
        if agent is None or agent is self.seen_agent:
            return None
        self.seen_agent = agent
        self._remember_agent(agent)
        return agent

    def _remember_agent(self, agent: Any) -> None:
        agent_id = safe_str(getattr_safe(agent, "id"))
        name = agent_name(agent)
        if agent_id and name:
            self._agent_names[agent_id] = name

    def _uses_realtime(self) -> bool:
        agent = current_agent(self._session) or self.seen_agent
        return isinstance(agent_attr(self._session, agent, "llm"), lk_llm.RealtimeModel)

    # --- conversation items

    def _on_conversation_item_added(self, ev: Any, t: float) -> list[Record]:
        audio_out = text_out = agent = None
        if isinstance(ev, tuple):
            ev, audio_out, text_out, *rest = ev
            agent = rest[0] if rest else None
        item = ev.item
        kind = getattr(item, "type", None)
        if kind == "message":
            return self.message(item, t, audio_out=audio_out, text_out=text_out, live=True)
        if kind == "agent_handoff":
            if agent is not None:
                self._remember_agent(agent)
            return self.handoff(item, t)
        return []

    def message(
        self, msg: Any, t: float, *, audio_out: Any, text_out: Any, live: bool
    ) -> list[Record]:
        """A user or assistant ChatMessage, live or (``live=False``) from history at close."""
        # Everything is built before the item is marked as seen: a failure on the way leaves
        # it for reconcile() at close instead of losing it.
        if msg.id in self.seen_items:
            return []
        out: list[Record] = []
        metrics = dict(getattr(msg, "metrics", None) or {})
        at = utc(t) if live else utc(msg.created_at)
        provenance: Provenance = "live" if live else "reconciled"
        if msg.role == "user":
            if self._claimed_by_stt_finals(text_of(msg)):
                self.seen_items.add(msg.id)
                return []
            out.append(self._user_message(msg, metrics, at, live, provenance))
        elif msg.role == "assistant":
            interrupted = bool(msg.interrupted)
            if not interrupted:
                # An interrupted reply is added after the interruption settles, and the STT
                # final of the words that interrupted it can already be pending: its user
                # message still follows, so the final is not an unclaimed one.
                out.extend(self.flush_finals())
            out.append(self._agent_message(msg, metrics, at, live, audio_out, text_out))
        else:
            return []
        record = timing.message_timing(msg, metrics, at, provenance)
        if record is not None:
            out.append(record)
        self.seen_items.add(msg.id)
        if msg.role == "user":
            self._pending_finals.clear()
        return out

    def _user_message(
        self, msg: Any, metrics: dict[str, Any], at: Any, live: bool, provenance: Provenance
    ) -> UserUtterance:
        language = speaker = None
        for tr, _ in self._pending_finals:
            language = language or safe_str(getattr_safe(tr, "language"))
            speaker = speaker or safe_str(getattr_safe(tr, "speaker_id"))
        spoken = self._spoken(msg, metrics)
        if not live:
            source: UtteranceSource = "history"
        elif not spoken:
            source = "text"
        else:
            source = "realtime" if self._uses_realtime() else "stt"
        started, ended = self._user_speech if spoken and live else (None, None)
        return UserUtterance(
            at=at,
            text=text_of(msg),
            language=language,
            speaker_id=speaker,
            confidence=msg.transcript_confidence,
            started_at=dt(metrics.get("started_speaking_at", started)),
            ended_at=dt(metrics.get("stopped_speaking_at", ended)),
            item_id=msg.id,
            final=True,
            interrupted=bool(msg.interrupted),
            source=source,
            input_mode="speech" if spoken else "text",
            provenance=provenance,
        )

    def _agent_message(
        self,
        msg: Any,
        metrics: dict[str, Any],
        at: Any,
        live: bool,
        audio_out: Any,
        text_out: Any,
    ) -> AgentUtterance:
        text = text_of(msg)
        interrupted = bool(msg.interrupted)
        known = True
        if interrupted and audio_out is not None and not synchronized(audio_out, text_out):
            known = False
        if not live:
            # reconciled at close: the chain of that moment is unknown
            known = not interrupted
        generated = None
        if interrupted and known and self.tap is not None:
            generated = self.tap.generated_for(text)
        return AgentUtterance(
            at=at,
            text=text,
            generated_text=generated,
            heard_text_known=known,
            interrupted=interrupted,
            started_at=dt(metrics.get("started_speaking_at")),
            ended_at=dt(metrics.get("stopped_speaking_at")),
            item_id=msg.id,
            source="live" if live else "history",
            provenance="live" if live else "reconciled",
        )

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

    def handoff(self, item: Any, t: float, *, live: bool = True) -> list[Record]:
        if item.id in self.seen_items:
            return []

        def name(agent_id: str | None) -> str | None:
            # an agent's id is its name in LiveKit; an id never seen live names it as well
            return None if agent_id is None else self._agent_names.get(agent_id, agent_id)

        record = Handoff(
            at=utc(t) if live else utc(item.created_at),
            old_agent_id=item.old_agent_id,
            new_agent_id=item.new_agent_id,
            old_agent_name=name(item.old_agent_id),
            new_agent_name=name(item.new_agent_id),
            item_id=item.id,
            provenance="live" if live else "reconciled",
        )
        self.seen_items.add(item.id)
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
            at=utc(t),
            text=ev.transcript,
            language=safe_str(ev.language),
            speaker_id=ev.speaker_id,
            started_at=dt(started),
            ended_at=dt(ended) if final else None,
            item_id=ev.item_id,
            final=final,
            source="stt" if ev.item_id is None else "realtime",
            input_mode="speech",
        )

    def flush_finals(self) -> list[Record]:
        """Finals no user ChatMessage claimed (e.g. a turn LiveKit dropped), kept as-is."""
        out: list[Record] = []
        for ev, t in self._pending_finals:
            try:
                out.append(self._transcript_record(ev, t, final=True))
            except Exception as e:
                # one bad transcript must not take the reply it is flushed with down too
                out.append(
                    Notice(
                        at=utc(t),
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

    # --- tools, metrics, usage

    def _on_tool_execution_updated(self, ev: Any, t: float) -> list[Record]:
        return self.tools.on_execution_updated(ev, t)

    def _on_function_tools_executed(self, ev: Any, t: float) -> list[Record]:
        return self.tools.on_tools_executed(ev, t)

    def _on_metrics_collected(self, ev: Any, t: float) -> list[Record]:
        return timing.metrics_records(ev, t)

    def _on_session_usage_updated(self, ev: Any, t: float) -> list[Record]:
        self.usage = ev.usage
        return []

    # --- errors and notices

    def _on_error(self, ev: Any, t: float) -> list[Record]:
        err = ev.error
        inner = getattr(err, "error", None)
        message = str(inner) if isinstance(inner, BaseException) else repr(err)
        src = ev.source
        return [
            ErrorRecord(
                at=utc(t),
                source=type(src).__name__,
                model=model_info(src),
                recoverable=getattr(err, "recoverable", None),
                message=message,
            )
        ]

    def _on_user_transcription_timeout(self, ev: Any, t: float) -> list[Record]:
        details = {
            "speech_duration": ev.speech_duration,
            "vad_speech_started_at": ev.vad_speech_started_at,
        }
        return [
            Notice(
                at=utc(t),
                code="user_transcription_timeout",
                message="user speech produced no transcript",
                details=details,
            )
        ]

    def _on_agent_false_interruption(self, ev: Any, t: float) -> list[Record]:
        return [
            Notice(
                at=utc(t),
                code="false_interruption",
                message="agent speech paused by noise, not user speech",
                details={"resumed": bool(ev.resumed)},
            )
        ]

    def _on_overlapping_speech(self, ev: Any, t: float) -> list[Record]:
        return [
            Notice(
                at=utc(t),
                code="overlapping_speech",
                message="user spoke while the agent was speaking",
                details={"detected_at": getattr(ev, "detected_at", None)},
            )
        ]
