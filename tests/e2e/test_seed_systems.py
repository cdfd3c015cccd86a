"""The four seed systems end to end: real plugins, simulators, audio, recorder, review API.

All runs happen at once in one module fixture (each is ~30 s of real-time conversation); each
system's outcome is then checked by its own test, so a failure names the system. Records are
read back only through the review API, as an auditor would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from auditagent_api import create_app
from fastapi.testclient import TestClient
from livekit.agents import Agent, AgentSession, utils
from livekit.agents import llm as lk_llm
from livekit.agents.language import LanguageCode
from livekit.agents.voice.events import ConversationItemAddedEvent, UserInputTranscribedEvent

from auditagent import records as r
from auditagent.errors import TranscriptionDisabled
from auditagent.keys import LocalKeyring
from auditagent.livekit.capture import SessionCapture
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from auditagent_demo import script
from auditagent_demo.server import SimulatorServer, gemini_live
from auditagent_demo.systems import SEED_SYSTEMS, run_seed_system, system_spec
from tests.audio.audio_support import decode, rms
from tests.support.api import auth, make_token
from tests.support.helpers import read_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SCENARIO = script.default_scenario()
# run name -> (system, realtime input transcription on)
RUNS: dict[str, tuple[str, bool]] = {
    **{name: (name, True) for name in SEED_SYSTEMS},
    "openai-realtime-transcription-off": ("openai-realtime", False),
}
# Gemini's simulator honours a barge-in only while it still sends audio; 8x as in its tests.
REALTIME_PACE = 8.0


@dataclass
class Outcome:
    session_id: uuid.UUID | None
    error: BaseException | None


@dataclass
class E2E:
    settings: Settings
    keyring: LocalKeyring
    tenant: str
    outcomes: dict[str, Outcome]
    truncations: list[tuple[str, int]]
    gemini_interruptions: int


@pytest.fixture(scope="module")
def e2e(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> E2E:
    data_dir: Path = tmp_path_factory.mktemp("e2e") / "data"
    data_dir.mkdir(mode=0o700)
    settings = Settings(database_url=database_url, data_dir=data_dir, flush_interval=0.05)
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    tenant = f"t-e2e-{uuid.uuid4().hex[:8]}"

    async def run_all() -> E2E:
        async with (
            SimulatorServer(realtime_pace=REALTIME_PACE) as sim,
            AuditRecorder(settings, key_provider=keyring) as recorder,
        ):

            async def one(run: str) -> Outcome:
                system, transcription = RUNS[run]
                try:
                    rec = await run_seed_system(
                        system,
                        sim=sim,
                        recorder=recorder,
                        tenant=tenant,
                        participant=f"+1555{uuid.uuid4().int % 10**7:07d}",
                        input_transcription=transcription,
                        timeout=90,
                    )
                except Exception as exc:
                    return Outcome(None, exc)
                return Outcome(rec.session_id, None)

            results = await asyncio.gather(*(one(run) for run in RUNS))
            await recorder.flush(timeout=30)
            return E2E(
                settings,
                keyring,
                tenant,
                dict(zip(RUNS, results, strict=True)),
                list(sim.openai_realtime.truncations),
                sim.gemini.interruptions,
            )

    return asyncio.run(run_all())


@pytest.fixture(scope="module")
def api(e2e: E2E) -> Iterator[tuple[TestClient, dict[str, str]]]:
    engine = db.make_engine(e2e.settings)
    app = create_app(e2e.settings, engine=engine, key_provider=e2e.keyring)
    headers = auth(make_token(engine, "auditor", e2e.tenant))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, headers
    engine.dispose()


def _get(api: tuple[TestClient, dict[str, str]], path: str) -> Any:
    client, headers = api
    res = client.get(path, headers=headers)
    assert res.status_code == 200, f"{path}: {res.status_code} {res.text}"
    return res.json()


def _session(e2e: E2E, run: str) -> uuid.UUID:
    out = e2e.outcomes[run]
    if out.error is not None:
        raise AssertionError(f"{run} did not play its scenario: {out.error!r}") from out.error
    assert out.session_id is not None
    return out.session_id


def _check_transcript(entries: list[dict[str, Any]], run: str, *, realtime: bool) -> None:
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "opened" and kinds[-1] == "closed", kinds
    assert not [e for e in entries if e["kind"] in ("gap", "error")], entries

    users = [e for e in entries if e["kind"] == "user"]
    assert [u["text"] for u in users] == SCENARIO.user_lines, run

    agents = [e for e in entries if e["kind"] == "agent"]
    replies = SCENARIO.agent_replies
    assert len(agents) == len(replies), [a["text"] for a in agents]
    for got, want in zip(agents, replies, strict=True):
        assert got["heard_text_known"] is True, got
        if want.interrupted:
            heard = got["text"].rstrip()
            assert got["interrupted"] is True, got
            assert heard and heard != want.text.rstrip(), got["text"]
            assert want.text.startswith(heard), got["text"]
            # What the model generated, kept by the recorder before the synchronizer cut it to
            # what was played. A pipeline's LLM has the whole reply out before the barge-in; a
            # realtime model streams its transcript with the audio, so it was cut mid-way too.
            generated = got["generated_text"] or ""
            assert len(generated.rstrip()) > len(heard) and generated.startswith(heard), got
            assert want.text.startswith(generated.rstrip()), got
            if realtime:
                assert generated.rstrip() != want.text.rstrip(), got
            else:
                assert generated == want.text, got
        else:
            assert got["interrupted"] is False, got
            assert got["text"] == want.text, got

    (scripted,) = SCENARIO.tool_calls
    (call,) = [e for e in entries if e["kind"] == "tool_call"]
    (result,) = [e for e in entries if e["kind"] == "tool_result"]
    assert call["name"] == scripted.name == "lookup_appointment"
    assert json.loads(call["arguments"]) == scripted.arguments
    assert result["call_id"] == call["call_id"] and result["name"] == scripted.name
    assert result["is_error"] is False
    assert json.loads(result["output"]) == scripted.result

    # conversation order: the tool answers user line 1 and precedes the reply that uses it
    seq = {id(e): e["seq"] for e in entries}
    assert seq[id(users[1])] < seq[id(call)] < seq[id(result)] < seq[id(agents[2])]
    # the long reply answers line 2 and is cut short; the barge-in line gets the last reply
    assert seq[id(users[2])] < seq[id(agents[3])] < seq[id(agents[4])]
    assert seq[id(users[3])] < seq[id(agents[4])]


def _check_detail(detail: dict[str, Any], system: str) -> None:
    spec = system_spec(system)
    assert detail["architecture"] == spec.architecture
    assert detail["tool_names"] == ["lookup_appointment"]
    assert detail["status"] == "closed" or detail["ended_at"] is not None
    models = detail["models"]
    assert set(models) == set(spec.models), models
    for slot, (model, provider) in spec.models.items():
        assert models[slot]["model"] == model, (slot, models[slot])
        got_provider = (models[slot]["provider"] or "").lower()
        assert provider in got_provider or _provider_is_endpoint(got_provider), (slot, models)
    assert detail["integrity"]["ok"] is True


def _provider_is_endpoint(provider: str) -> bool:
    # LiveKit's OpenAI plugins name their provider after the base URL's host; pointed at the
    # simulator that host is 127.0.0.1, and the record rightly says so.
    return provider.startswith("127.0.0.1")


# Turn timing fields each system must record. Gemini's plugin (1.8.9) reports ttft=-1 on
# every RealtimeModelMetrics ("Gemini has no response-start event"), which the recorder
# rightly stores as unknown; its turns carry the generation's duration and tokens instead.
TIMING_FIELDS: dict[str, tuple[str, ...]] = {
    "pipeline-deepgram": ("transcription_delay", "end_of_utterance_delay", "llm_ttft", "tts_ttfb"),
    "pipeline-whisper": ("transcription_delay", "end_of_utterance_delay", "llm_ttft", "tts_ttfb"),
    "openai-realtime": ("realtime_ttft", "llm_duration"),
    "gemini-live": ("llm_duration",),
}


def _check_timings(events: list[dict[str, Any]], system: str) -> None:
    timings = [e["record"] for e in events if e["kind"] == "turn_timing"]
    assert timings
    for name in TIMING_FIELDS[system]:
        values = [t[name] for t in timings if t.get(name) is not None]
        assert values, f"no turn_timing carries {name}"
        assert all(0 <= v < 30 for v in values), (name, values)
    if system_spec(system).architecture == "realtime":
        tokens = [t["tokens"] for t in timings if t.get("tokens")]
        assert any(tok["total"] for tok in tokens), tokens


# What each transcript entry kind may carry; anything else does not apply to it.
ENTRY_FIELDS: dict[str, set[str]] = {
    "user": {"text", "input_mode", "interrupted", "started_at", "ended_at", "timing"},
    "agent": {
        "text",
        "generated_text",
        "heard_text_known",
        "interrupted",
        "started_at",
        "ended_at",
        "timing",
    },
    "tool_call": {"name", "call_id", "arguments"},
    "tool_result": {"name", "call_id", "output", "is_error"},
    "handoff": {"name", "text"},
    "error": {"name", "text", "is_error"},
    "notice": {"name", "text"},
    "gap": {"text"},
    "opened": {"name"},
    "closed": {"text", "is_error"},
    "agent_config_updated": {"text"},
    "transcription_enabled": {"name"},
}


def _check_entry_shapes(entries: list[dict[str, Any]], system: str) -> None:
    for e in entries:
        extra = set(e) - {"seq", "at", "kind", "provenance"} - ENTRY_FIELDS[e["kind"]]
        assert not extra, (e["kind"], extra)
        timing = e.get("timing")
        if timing is not None:
            assert None not in timing.values(), timing
    assert [(e["at"], e["seq"]) for e in entries] == sorted((e["at"], e["seq"]) for e in entries)
    users = [e for e in entries if e["kind"] == "user"]
    assert {u["input_mode"] for u in users} == {"speech"}
    handoffs = [e["text"] for e in entries if e["kind"] == "handoff"]
    assert handoffs == ["(session start) -> seed_agent"], handoffs
    if system_spec(system).architecture != "realtime":
        return
    # a realtime turn carries what the model reported for it, and says what it did not
    timed = [e["timing"] for e in entries if e["kind"] == "agent" and e.get("timing")]
    reported = [t for t in timed if "llm_duration" in t]
    assert len(reported) >= len(SCENARIO.agent_replies) - 1, timed
    for t in reported:
        assert t["tokens"]["total"] > 0, t
        if system == "openai-realtime":
            assert t["realtime_ttft"] > 0 and "not_reported" not in t, t
        else:
            assert "realtime_ttft" not in t, t
            assert "first-audio" in t["not_reported"]["realtime_ttft"], t


def _check_audio(
    api: tuple[TestClient, dict[str, str]], sid: uuid.UUID, verify: Any, detail: Any
) -> None:
    """The call's audio (issue 15): both sides, as long as the call, held to its records."""
    client, headers = api
    res = client.get(f"/v1/sessions/{sid}/audio", headers=headers)
    assert res.status_code == 200 and res.headers["content-type"] == "audio/ogg", res.text
    pcm, rate = decode(res.content)
    assert pcm.shape[0] == 2
    assert rms(pcm[0]) > 0.005 and rms(pcm[1]) > 0.005, (rms(pcm[0]), rms(pcm[1]))
    call = (
        datetime.fromisoformat(detail["ended_at"]) - datetime.fromisoformat(detail["started_at"])
    ).total_seconds()
    assert abs(pcm.shape[1] / rate - call) < 2.0, (pcm.shape[1] / rate, call)
    assert verify["audio"]["ok"] and verify["audio"]["complete"], verify["audio"]


@pytest.mark.parametrize("system", SEED_SYSTEMS)
def test_seed_system_recorded_end_to_end(
    e2e: E2E, api: tuple[TestClient, dict[str, str]], system: str
) -> None:
    sid = _session(e2e, system)
    entries = _get(api, f"/v1/sessions/{sid}/transcript")["entries"]
    _check_transcript(entries, system, realtime=system_spec(system).architecture == "realtime")
    _check_entry_shapes(entries, system)
    _check_detail(_get(api, f"/v1/sessions/{sid}"), system)
    events = _get(api, f"/v1/sessions/{sid}/events")["events"]
    _check_timings(events, system)
    opened = events[0]["record"]
    assert opened["kind"] == "opened" and opened["labels"] == {"system": system}
    assert opened["transcription"]["enabled_by_recorder"] is False
    verify = _get(api, f"/v1/sessions/{sid}/verify")
    assert verify["ok"] is True and verify["events"] == len(events)
    _check_audio(api, sid, verify, _get(api, f"/v1/sessions/{sid}"))
    # the barge-in reached the provider: OpenAI was told how much audio was played (one per
    # OpenAI run), Gemini's server saw the user talk over it
    if system == "openai-realtime":
        assert e2e.truncations and all(ms > 0 for _, ms in e2e.truncations), e2e.truncations
    if system == "gemini-live":
        assert e2e.gemini_interruptions == 1


def test_openai_realtime_transcription_turned_on_by_recorder(
    e2e: E2E, api: tuple[TestClient, dict[str, str]]
) -> None:
    run = "openai-realtime-transcription-off"
    sid = _session(e2e, run)
    events = _get(api, f"/v1/sessions/{sid}/events")["events"]
    opened = events[0]["record"]
    assert opened["transcription"]["enabled_by_recorder"] is True
    (enabled,) = [e["record"] for e in events if e["kind"] == "transcription_enabled"]
    assert enabled["model"]["model"] == "gpt-4o-realtime-preview"
    assert enabled["transcription_model"]
    entries = _get(api, f"/v1/sessions/{sid}/transcript")["entries"]
    # every user line is there although the model was built with transcription off
    _check_transcript(entries, run, realtime=True)
    assert _get(api, f"/v1/sessions/{sid}/verify")["ok"] is True


# The scenario up to the tool's answer: two user lines, the tool call, three replies.
SHORT_SCENARIO = script.Scenario(turns=SCENARIO.turns[:6])


async def test_gemini_built_with_transcription_off_is_recorded_with_it_on(
    settings: Settings, tenant: str
) -> None:
    """Gemini reads its transcription settings when its session connects, after attach: the
    recorder turns both on before that, with the real plugin against the Live simulator."""
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    async with (
        SimulatorServer(SHORT_SCENARIO, realtime_pace=REALTIME_PACE) as sim,
        AuditRecorder(settings, key_provider=keyring) as recorder,
    ):
        rec = await asyncio.wait_for(
            run_seed_system(
                "gemini-live",
                sim=sim,
                recorder=recorder,
                tenant=tenant,
                input_transcription=False,
                output_transcription=False,
                speed=4.0,
            ),
            60,
        )
        await recorder.flush()
        setup = sim.gemini.setups[-1]
    # what the model sent at connect: transcription on in both directions
    assert "inputAudioTranscription" in setup and "outputAudioTranscription" in setup
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    opened = got[0]
    assert isinstance(opened, r.Opened) and opened.transcription.enabled_by_recorder is True
    assert opened.transcription.user_transcription is True
    assert opened.transcription.agent_transcription is True
    (enabled,) = [x for x in got if isinstance(x, r.TranscriptionEnabled)]
    assert enabled.directions == ["input", "output"]
    assert enabled.model.model == system_spec("gemini-live").models["realtime"][0]
    users = [x.text for x in got if isinstance(x, r.UserUtterance)]
    assert users == SHORT_SCENARIO.user_lines
    agents = [x.text for x in got if isinstance(x, r.AgentUtterance)]
    assert agents == [a.text for a in SHORT_SCENARIO.agent_replies]


async def test_gemini_transcription_off_refused_once_its_session_is_connected(
    settings: Settings, tenant: str
) -> None:
    """Too late to turn it on: the model's session has connected and read its settings."""
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    async with (
        SimulatorServer(SHORT_SCENARIO, realtime_pace=REALTIME_PACE) as sim,
        AuditRecorder(settings, key_provider=keyring) as recorder,
        utils.http_context.open(),
    ):
        model = gemini_live(sim, input_transcription=False, output_transcription=False)
        session: AgentSession[None] = AgentSession(
            llm=model, vad=None, turn_handling={"turn_detection": "realtime_llm"}
        )
        await asyncio.wait_for(session.start(Agent(instructions="x")), 20)
        try:
            with pytest.raises(TranscriptionDisabled) as info:
                recorder.attach(session, tenant=tenant)
        finally:
            await session.aclose()
    message = str(info.value)
    assert "\n" not in message and "already connected" in message
    for arg in ("input_audio_transcription", "output_audio_transcription"):
        assert f"{arg}=" in message, message
    assert "before session.start()" in message


async def test_barge_in_final_before_interrupted_reply_is_one_utterance() -> None:
    """What the concurrent runs hit under load, pinned without timing: the STT final of the
    barge-in arrives before the interrupted reply's message is added."""
    session: AgentSession[None] = AgentSession(vad=None)
    cap = SessionCapture(session, put=lambda _: None, policy="off")
    words = SCENARIO.user_lines[3]
    final = UserInputTranscribedEvent(transcript=words, is_final=True, language=LanguageCode("en"))
    cut = lk_llm.ChatMessage(role="assistant", content=["Please bring"], interrupted=True)
    user = lk_llm.ChatMessage(role="user", content=[words])
    got: list[r.Record] = []
    got += cap.translate(("user_input_transcribed", final, 1.0))
    got += cap.translate(("conversation_item_added", ConversationItemAddedEvent(item=cut), 1.1))
    got += cap.translate(("conversation_item_added", ConversationItemAddedEvent(item=user), 1.2))
    users = [x for x in got if isinstance(x, r.UserUtterance)]
    assert [(u.text, u.item_id, u.language) for u in users] == [(words, user.id, "en")]
