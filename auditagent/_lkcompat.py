"""Every access auditagent makes to LiveKit's private attributes, in one place.

Read on livekit-agents 1.8.9 and livekit-plugins-google 1.8.9. LiveKit gives no public way to do
what these do (see each function); a LiveKit upgrade that renames one breaks it here, and
:func:`missing_for_session` / :func:`missing_for_model` say so at ``attach`` instead of the
capture silently degrading. Re-read each one against the installed source on any upgrade.

Nothing here does I/O or raises into LiveKit; the hot-path helpers are a few attribute reads.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "current_agent",
    "enable_gemini_transcription",
    "gemini_connected",
    "is_gemini_live",
    "missing_for_model",
    "missing_for_session",
    "output_transcription_on",
    "session_can_speak",
    "session_closing",
    "session_started",
    "synchronizer_enabled",
    "synchronizer_kinds",
]

# AgentSession.__init__ sets all of these; `current_agent` (public) raises before start.
_SESSION_ATTRS = ("_agent", "_started", "_closing", "_closing_task")
_SYNC_CLASSES = ("_SyncedAudioOutput", "_SyncedTextOutput")
# google.realtime.RealtimeModel: options read by RealtimeSession._build_connect_config at each
# connect, the capabilities LiveKit's AgentActivity reads, the live sessions it created.
_GEMINI_ATTRS = ("_opts", "_capabilities", "_sessions")
_GEMINI_OPTS = ("input_audio_transcription", "output_audio_transcription")


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


def missing_for_session(session: Any) -> list[str]:
    """Private names this module needs that the installed LiveKit does not have."""
    out = [f"AgentSession.{a}" for a in _SESSION_ATTRS if not hasattr(session, a)]
    try:
        from livekit.agents.voice.transcription import synchronizer as sync_mod
    except ImportError:
        return [*out, "livekit.agents.voice.transcription.synchronizer"]
    out += [f"synchronizer.{c}" for c in _SYNC_CLASSES if not hasattr(sync_mod, c)]
    return out


# ---------------------------------------------------------------- TranscriptSynchronizer


def synchronizer_kinds() -> tuple[type, ...]:
    """The output wrappers a TranscriptSynchronizer inserts (no public type to test against)."""
    from livekit.agents.voice.transcription import synchronizer as sync_mod

    return tuple(k for c in _SYNC_CLASSES if isinstance(k := getattr(sync_mod, c, None), type))


def synchronizer_enabled(node: Any) -> bool:
    """Whether the synchronizer behind a wrapper is enabled (unknown counts as enabled)."""
    owner = getattr(node, "_synchronizer", None)
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
    try:
        from livekit.plugins.google.realtime import RealtimeModel
    except ImportError:
        return False
    return isinstance(model, RealtimeModel)


def missing_for_model(model: Any) -> list[str]:
    """Private names :func:`enable_gemini_transcription` needs that ``model`` lacks."""
    if not is_gemini_live(model):
        return []
    out = [f"google.realtime.RealtimeModel.{a}" for a in _GEMINI_ATTRS if not hasattr(model, a)]
    opts = getattr(model, "_opts", None)
    out += [
        f"google.realtime.RealtimeModel._opts.{a}"
        for a in _GEMINI_OPTS
        if opts is not None and not hasattr(opts, a)
    ]
    return out


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
    if not is_gemini_live(model) or missing_for_model(model) or gemini_connected(model):
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
