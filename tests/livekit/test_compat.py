"""Private LiveKit attributes (auditagent/livekit/_compat.py) checked at attach, against real
AgentSessions and real plugin models with the attribute really gone: the recording says what
it loses, once, and ``enforce`` does not let a session by that it cannot check."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from livekit.agents import AgentSession
from livekit.agents.voice.transcription import synchronizer as sync_mod
from livekit.plugins.google import realtime

from auditagent import records as r
from auditagent.errors import TranscriptionDisabled
from auditagent.keys import LocalKeyring
from auditagent.livekit import _compat as lk
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.llm import ScriptedLLM
from tests.support.helpers import read_records


def _gemini() -> realtime.RealtimeModel:
    # nothing connects before session.start(): no server needed to construct it
    return realtime.RealtimeModel(api_key="dummy-key", vertexai=False)


def _notices(got: list[r.Record], code: str) -> list[r.Notice]:
    return [x for x in got if isinstance(x, r.Notice) and x.code == code]


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [x for x in caplog.records if x.levelno >= logging.ERROR]


async def test_installed_livekit_has_every_attribute_read() -> None:
    """No false alarm on the LiveKit this release supports (1.8.9)."""
    assert lk.check_session(AgentSession(llm=ScriptedLLM([]), vad=None)) == []
    assert lk.check_model(_gemini()) == []
    assert len(lk.synchronizer_kinds()) == 2


async def test_missing_synchronizer_class_is_named_in_a_notice_and_one_error(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # as if a LiveKit release had renamed both wrappers
    monkeypatch.delattr(sync_mod, "_SyncedAudioOutput")
    monkeypatch.delattr(sync_mod, "_SyncedTextOutput")
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        with caplog.at_level(logging.ERROR):
            rec = recorder.attach(AgentSession(llm=ScriptedLLM([]), vad=None), tenant=tenant)
        errors = _errors(caplog)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    [note] = _notices(got, "livekit_internals_missing")
    assert note.details["missing"] == [
        "synchronizer._SyncedAudioOutput",
        "synchronizer._SyncedTextOutput",
    ]
    assert note.details["degraded"] == [
        "interrupted replies: synchronizer class not found (heard text recorded as unknown)"
    ]
    assert "interrupted replies: synchronizer class not found" in note.message
    assert len(errors) == 1, [e.getMessage() for e in errors]
    assert "synchronizer class not found" in errors[0].getMessage()
    # and the capture falls back to "unknown" rather than failing: no wrapper type to find
    assert lk.synchronizer_kinds() == ()


async def test_synchronizer_that_no_longer_links_its_owner_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wrapper's ``_synchronizer`` is an instance attribute: checked in its __init__."""

    class Renamed(sync_mod._SyncedTextOutput):
        def __init__(self, synchronizer: object, *, next_in_chain: object = None) -> None:
            self._owner = synchronizer  # where a LiveKit release might keep it instead

    monkeypatch.setattr(sync_mod, "_SyncedTextOutput", Renamed)
    found = lk.check_session(AgentSession(llm=ScriptedLLM([]), vad=None))
    assert [(d.attribute, d.capability.split(":")[0]) for d in found] == [
        ("synchronizer._SyncedTextOutput._synchronizer", "interrupted replies")
    ]


async def test_gemini_without_opts_is_refused_under_enforce(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    """Before: ``output_transcription_on`` read a missing ``_opts`` as "cannot tell", which
    the policy took for "on", and the session was let through unchecked."""
    model = _gemini()
    del model._opts  # as if the plugin had renamed it
    session: AgentSession[None] = AgentSession(llm=model, vad=None)
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        assert recorder.settings.transcription_policy == "enforce"
        with pytest.raises(TranscriptionDisabled) as info:
            recorder.attach(session, tenant=tenant)
    message = str(info.value)
    assert "cannot be read" in message and "RealtimeModel._opts" in message
    assert "AUDITAGENT_TRANSCRIPTION_POLICY=warn" in message


async def test_gemini_without_opts_under_warn_is_recorded_with_both_notices(
    data_dir: Path, database_url: str, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        flush_interval=0.05,
        transcription_policy="warn",
    )
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    model = _gemini()
    del model._opts
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        with caplog.at_level(logging.ERROR):
            rec = recorder.attach(AgentSession(llm=model, vad=None), tenant=tenant)
        errors = _errors(caplog)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    [unverified] = _notices(got, "transcription_unverified")
    assert "cannot be read" in unverified.message
    [degraded] = _notices(got, "livekit_internals_missing")
    assert degraded.details["missing"] == ["google.realtime.RealtimeModel._opts"]
    assert degraded.details["degraded"] == [
        "realtime transcription: Gemini's transcription settings cannot be read or turned on"
    ]
    [opened] = [x for x in got if isinstance(x, r.Opened)]
    assert any("cannot be read" in f for f in opened.transcription.findings)
    assert len(errors) == 1  # the degraded capability; the policy's own finding is a warning


async def test_session_without_agent_attribute_names_what_it_costs(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    del session._agent
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        rec = recorder.attach(session, tenant=tenant)
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    [note] = _notices(got, "livekit_internals_missing")
    assert note.details["missing"] == ["AgentSession._agent"]
    assert note.details["degraded"][0].startswith("agent changes:")
    # the recording itself still opens and closes
    assert got[0].kind == "opened" and got[-1].kind == "closed"
