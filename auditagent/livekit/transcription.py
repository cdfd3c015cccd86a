"""The transcription policy: a realtime model that leaves no text to record.

A realtime model can run with its input (user) or output (agent) transcription off, and then
the session has nothing to record for that side. Under ``enforce`` the recorder turns it on
where it can (OpenAI's public ``update_options``; Gemini's options before it connects) and
refuses the session where it cannot, or cannot tell; ``warn`` records a notice; ``off`` only
notes it in the ``opened`` record's findings. Every realtime model is checked once: the
session's and each agent's as it takes over.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from livekit.agents import llm as lk_llm

from ..errors import TranscriptionDisabled
from ..records import ModelInfo, Notice, Record, TranscriptionEnabled
from ..settings import TranscriptionPolicy
from . import _compat as lk
from .fields import agent_attr, getattr_safe, model_info, safe_str, utc

logger = logging.getLogger("auditagent.capture")

DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"


class TranscriptionGuard:
    """Applies the policy to each realtime model of one session; keeps what it found."""

    def __init__(self, session: Any, *, policy: TranscriptionPolicy) -> None:
        self._session = session
        self.policy: TranscriptionPolicy = policy
        self.findings: list[str] = []
        self.enabled_by_us = False
        # by id, with the model kept alive so an id is never reused for another model
        self._checked: dict[int, Any] = {}

    def check(self, m: Any, agent: Any, now: float, *, may_raise: bool) -> list[Record]:
        """Records for model ``m`` (a notice, or that transcription was turned on).

        Raises TranscriptionDisabled under ``enforce`` with ``may_raise`` (at attach) when the
        model cannot produce the text, or whether it does cannot be read.
        """
        if not isinstance(m, lk_llm.RealtimeModel) or id(m) in self._checked:
            return []
        self._checked[id(m)] = m
        info = model_info(m) or ModelInfo()
        label = f"{info.provider or '?'}/{info.model or '?'}"
        input_off = not m.capabilities.user_transcription
        output = lk.output_transcription_on(m)
        output_off = output is False
        has_stt = agent_attr(self._session, agent, "stt") is not None
        agent_id = safe_str(getattr_safe(agent, "id"))
        if output is None and lk.is_gemini_live(m):
            return self._unreadable(m, label, agent_id, now, may_raise=may_raise)
        if not input_off and not output_off:
            return []
        if input_off and has_stt and not output_off:
            # a session STT transcribes the user when the realtime model does not
            self.findings.append(f"{label}: input transcription off, session STT used")
            return []
        if self.policy == "off":
            self.findings.append(f"{label}: transcription off, policy off")
            return []
        agent_name = safe_str(getattr_safe(agent, "label"))
        # the user is transcribed by the session STT when there is one
        need_input = input_off and not has_stt
        if need_input and not output_off and _can_enable(m):
            if self.policy == "enforce":
                tmodel = _enable_input_transcription(m)
                if tmodel is not None:
                    self.findings.append(f"{label}: input transcription turned on ({tmodel})")
                    self.enabled_by_us = True
                    return [
                        TranscriptionEnabled(
                            at=utc(now),
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
                self.findings.append(msg)
                return [_notice("transcription_off", now, msg, label, agent_id)]
        connected = False
        if lk.is_gemini_live(m) and self.policy == "enforce":
            # Gemini reads these settings when its session connects, which is after attach
            connected = lk.gemini_connected(m)
            done = lk.enable_gemini_transcription(m, input=need_input, output=output_off)
            if done:
                what = " and ".join(done)
                self.findings.append(f"{label}: {what} transcription turned on before connect")
                self.enabled_by_us = True
                return [
                    TranscriptionEnabled(
                        at=utc(now),
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
        return self._refuse_or_note(
            "transcription_off",
            msg,
            label,
            agent_id,
            now,
            may_raise=may_raise,
            fix=_fix_hint(m, input_off, output_off),
        )

    def _unreadable(
        self, m: Any, label: str, agent_id: str | None, now: float, *, may_raise: bool
    ) -> list[Record]:
        """A Gemini model whose transcription settings this LiveKit hides: ``enforce`` cannot
        tell whether the agent's speech will have text, so it does not let the session by."""
        missing = ", ".join(lk.missing_for_model(m)) or f"{type(m).__name__}._opts"
        msg = (
            f"realtime model {label}: whether its audio transcription is on cannot be read "
            f"(this LiveKit lacks {missing})"
        )
        if self.policy == "off":
            self.findings.append(f"{msg}, policy off")
            return []
        fix = (
            "install the livekit-agents/livekit-plugins-google 1.8.x this auditagent supports, "
            "or set AUDITAGENT_TRANSCRIPTION_POLICY=warn to record without that check"
        )
        return self._refuse_or_note(
            "transcription_unverified", msg, label, agent_id, now, may_raise=may_raise, fix=fix
        )

    def _refuse_or_note(
        self,
        code: str,
        msg: str,
        label: str,
        agent_id: str | None,
        now: float,
        *,
        may_raise: bool,
        fix: str,
    ) -> list[Record]:
        self.findings.append(msg)
        if self.policy == "enforce" and may_raise:
            raise TranscriptionDisabled(msg, fix=fix)
        if self.policy == "enforce":
            logger.error("auditagent: %s; the audit record will lack that text", msg)
        else:
            logger.warning("auditagent: %s", msg)
        return [_notice(code, now, msg, label, agent_id)]


def _notice(code: str, now: float, msg: str, label: str, agent_id: str | None) -> Notice:
    return Notice(
        at=utc(now),
        code=code,
        message=msg,
        details={"model": label, "agent_id": agent_id},
    )


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


def _can_enable(m: Any) -> bool:
    try:
        return "input_audio_transcription" in inspect.signature(m.update_options).parameters
    except (AttributeError, TypeError, ValueError):
        return False


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
