"""Every access auditagent makes to LiveKit's private attributes, in one place.

Read on livekit-agents 1.8.9 and livekit-plugins-google 1.8.9. LiveKit gives no public way to do
what these do (see each function); a LiveKit upgrade that renames one breaks it here, and
:func:`check_session` / :func:`check_model` say so at ``attach``, naming what the recording
loses, instead of the capture silently recording less. Re-read each one against the installed
source on any upgrade.

Nothing here does I/O or raises into LiveKit; the hot-path helpers are a few attribute reads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Degraded",
    "check_model",
    "check_session",
    "current_agent",
    "enable_gemini_transcription",
    "gemini_connected",
    "is_gemini_live",
    "missing_for_model",
    "missing_for_session",
    "on_quietly",
    "output_transcription_on",
    "session_can_speak",
    "session_closing",
    "session_started",
    "synchronizer_enabled",
    "synchronizer_kinds",
]


@dataclass(frozen=True)
class Degraded:
    """A private LiveKit attribute this LiveKit lacks, and what the recording loses for it."""

    attribute: str
    capability: str


_AGENT = "agent changes: the running agent cannot be read (names, handed-off models unchecked)"
_CLOSE = "close reason: a session LiveKit is closing may be recorded as recorder_closed"
# AgentSession.__init__ sets all of these; `current_agent` (public) raises before start.
_SESSION_ATTRS = {
    "_agent": _AGENT,
    "_started": _CLOSE,
    "_closing": _CLOSE,
    "_closing_task": _CLOSE,
}
_SYNC_MODULE = "livekit.agents.voice.transcription.synchronizer"
_SYNC_CLASSES = ("_SyncedAudioOutput", "_SyncedTextOutput")
_SYNC_LOST = "interrupted replies: synchronizer class not found (heard text recorded as unknown)"
# set by each wrapper's __init__; read to know whether its synchronizer is enabled
_SYNC_OWNER = "_synchronizer"
_SYNC_OWNER_LOST = (
    "interrupted replies: synchronizer link not found (a disabled synchronizer counts as enabled)"
)
# google.realtime.RealtimeModel: options read by RealtimeSession._build_connect_config at each
# connect, the capabilities LiveKit's AgentActivity reads, the live sessions it created.
_GEMINI = "google.realtime.RealtimeModel"
_GEMINI_OPTS_LOST = (
    "realtime transcription: Gemini's transcription settings cannot be read or turned on"
)
_GEMINI_ATTRS = {
    "_opts": _GEMINI_OPTS_LOST,
    "_capabilities": "realtime transcription: Gemini's input transcription cannot be turned on",
    "_sessions": "realtime transcription: whether Gemini has connected cannot be read",
}
_GEMINI_OPTS = ("input_audio_transcription", "output_audio_transcription")


# ---------------------------------------------------------------- attach-time checks


def check_session(session: Any) -> list[Degraded]:
    """The private names the capture reads of ``session`` (and of LiveKit's synchronizer)
    that the installed LiveKit lacks, each with the capability it costs."""
    out = [
        Degraded(f"AgentSession.{a}", what)
        for a, what in _SESSION_ATTRS.items()
        if not hasattr(session, a)
    ]
    try:
        from livekit.agents.voice.transcription import synchronizer as sync_mod
    except ImportError:
        return [*out, Degraded(_SYNC_MODULE, _SYNC_LOST)]
    for name in _SYNC_CLASSES:
        cls = getattr(sync_mod, name, None)
        if not isinstance(cls, type):
            out.append(Degraded(f"synchronizer.{name}", _SYNC_LOST))
        elif _SYNC_OWNER not in _assigned_in_init(cls):
            out.append(Degraded(f"synchronizer.{name}.{_SYNC_OWNER}", _SYNC_OWNER_LOST))
    return out


def _assigned_in_init(cls: type) -> tuple[str, ...]:
    """Attribute names ``cls.__init__`` refers to: an instance attribute can only be looked
    for on an instance, and the wrappers exist only once a synchronizer is wired."""
    code = getattr(getattr(cls, "__init__", None), "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def check_model(model: Any) -> list[Degraded]:
    """The private names the transcription policy needs of ``model`` that it lacks."""
    if not is_gemini_live(model):
        return []
    out = [
        Degraded(f"{_GEMINI}.{a}", what)
        for a, what in _GEMINI_ATTRS.items()
        if not hasattr(model, a)
    ]
    opts = getattr(model, "_opts", None)
    out += [
        Degraded(f"{_GEMINI}._opts.{a}", _GEMINI_OPTS_LOST)
        for a in _GEMINI_OPTS
        if opts is not None and not hasattr(opts, a)
    ]
    return out


def missing_for_session(session: Any) -> list[str]:
    """Private names this module needs that the installed LiveKit does not have."""
    return [d.attribute for d in check_session(session)]


def missing_for_model(model: Any) -> list[str]:
    """Private names :func:`enable_gemini_transcription` needs that ``model`` lacks."""
    return [d.attribute for d in check_model(model)]


# ---------------------------------------------------------------- AgentSession


def current_agent(session: Any) -> Any:
    """The running Agent, or None before start (``AgentSession.current_agent`` raises then)."""
    return getattr(session, "_agent", None)


def session_started(session: Any) -> bool:
    """Whether the session runs; LiveKit clears ``_started`` just before it emits ``close``."""
    return bool(getattr(session, "_started", False))


def session_can_speak(session: Any) -> bool:
    """Whether ``session.say`` would be accepted now: started, with an agent activity (it
    raises "AgentSession isn't running" until ``_activity`` is set, after ``_started``)."""
    return session_started(session) and getattr(session, "_activity", None) is not None


def session_closing(session: Any) -> bool:
    """Whether LiveKit is closing the session and has not emitted ``close`` yet.

    ``_closing_task`` is set synchronously by ``shutdown()``/a participant leaving, before the
    task runs; ``_closing`` is set when the teardown starts (also for a direct ``aclose()``).
    """
    if not session_started(session):
        return False
    task = getattr(session, "_closing_task", None)
    return bool(getattr(session, "_closing", False)) or (task is not None and not task.done())


def on_quietly(session: Any, name: str, handler: Any) -> None:
    """Subscribe without ``AgentSession.on``'s deprecation warning (``metrics_collected``:
    deprecated, still emitted, and the only carrier of the STT/TTS/EOU figures)."""
    from livekit import rtc

    rtc.EventEmitter[str].on(session, name, handler)


# ---------------------------------------------------------------- TranscriptSynchronizer


def synchronizer_kinds() -> tuple[type, ...]:
    """The output wrappers a TranscriptSynchronizer inserts (no public type to test against)."""
    try:
        from livekit.agents.voice.transcription import synchronizer as sync_mod
    except ImportError:
        return ()
    return tuple(k for c in _SYNC_CLASSES if isinstance(k := getattr(sync_mod, c, None), type))


def synchronizer_enabled(node: Any) -> bool:
    """Whether the synchronizer behind a wrapper is enabled (unknown counts as enabled)."""
    owner = getattr(node, _SYNC_OWNER, None)
    return owner is None or bool(getattr(owner, "enabled", True))


# ---------------------------------------------------------------- realtime models


def output_transcription_on(model: Any) -> bool | None:
    """A realtime model's output (agent speech) transcription: None when it cannot be told.

    Only models that keep ``_opts.output_audio_transcription`` (Gemini) can turn it off;
    ``RealtimeCapabilities`` has no field for it.
    """
    opts = getattr(model, "_opts", None)
    if opts is None or not hasattr(opts, "output_audio_transcription"):
        return None
    return opts.output_audio_transcription is not None


def is_gemini_live(model: Any) -> bool:
    """The real google plugin's Live model (whose connect reads the options changed here)."""
    # Looked up, never imported: importing the google plugin is ~440 modules, ~0.9 s on the
    # agent's event loop at attach, in a job process whose agent may not use it. A model of
    # that class exists only once its module has been imported.
    module = sys.modules.get("livekit.plugins.google.realtime")
    cls = getattr(module, "RealtimeModel", None)
    return isinstance(cls, type) and isinstance(model, cls)


def gemini_connected(model: Any) -> bool:
    """Whether the model already has a RealtimeSession (connected, or connecting now).

    Such a session has read its transcription settings; a change would only reach its next
    reconnect, so the recorder does not pretend it took effect.
    """
    try:
        return len(model._sessions) > 0
    except (AttributeError, TypeError):
        return True  # unknown: treat as too late


def enable_gemini_transcription(
    model: Any, *, input: bool, output: bool
) -> list[Literal["input", "output"]]:
    """Turn on a Gemini Live model's input and/or output transcription before it connects.

    The plugin's ``update_options`` does not take these, and ``RealtimeSession`` reads
    ``_opts`` in ``_build_connect_config`` at every connect, so setting them on the model before
    its first session connects is what a user passing ``AudioTranscriptionConfig()`` to the
    constructor gets. ``capabilities.user_transcription`` is what LiveKit's AgentActivity reads
    to know the user is transcribed. Returns the directions it turned on.
    """
    if not is_gemini_live(model) or check_model(model) or gemini_connected(model):
        return []
    from google.genai import types

    done: list[Literal["input", "output"]] = []
    if input and model._opts.input_audio_transcription is None:
        model._opts.input_audio_transcription = types.AudioTranscriptionConfig()
        model._capabilities.user_transcription = True
        done.append("input")
    if output and model._opts.output_audio_transcription is None:
        model._opts.output_audio_transcription = types.AudioTranscriptionConfig()
        done.append("output")
    return done
