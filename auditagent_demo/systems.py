"""The course's four seed systems, run end to end against the provider simulators.

Each system is the agent the course builds (`Agent(instructions="You are a helpful
assistant.")` plus a ``lookup_appointment`` tool), in a real ``AgentSession`` with the real
LiveKit plugins pointed at the local simulators:

* ``pipeline-deepgram``: deepgram.STT(model="nova-3") + openai.LLM(model="gpt-4o") + cartesia.TTS()
* ``pipeline-whisper``: openai.STT(model="whisper-1") + the same LLM and TTS
* ``openai-realtime``: openai.realtime.RealtimeModel(model="gpt-4o-realtime-preview", voice="alloy")
* ``gemini-live``: google.realtime.RealtimeModel() (the plugin's default Live model)

Audio goes in as PCM frames from a real-time microphone (``audio_io.ScenarioMic``) and comes
out into a sink with a playout clock, through a TranscriptSynchronizer as RoomIO would
insert one. The recorder is attached before ``session.start``; the whole scenario is played,
including the user talking over the agent's long reply, and the session is closed.

    async with SimulatorServer() as sim, AuditRecorder(settings) as recorder:
        rec = await run_seed_system("openai-realtime", sim=sim, recorder=recorder, tenant="t")
        await recorder.flush()
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit.agents import Agent, AgentSession, utils
from livekit.agents import llm as lk_llm
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from . import script
from .audio_io import ClockedAudioOutput, CollectingTextOutput, EnergyVAD, ScenarioMic
from .driver import STEP_TIMEOUT_S, SeedSystemError, Watch, play
from .server import (
    SimulatorServer,
    cartesia_tts,
    deepgram_stt,
    gemini_live,
    openai_llm,
    openai_realtime,
    whisper_stt,
)

if TYPE_CHECKING:
    from auditagent.recorder import AuditRecorder, SessionRecording

__all__ = [
    "SEED_INSTRUCTIONS",
    "SEED_SYSTEMS",
    "SeedSystemError",
    "SystemSpec",
    "prepare_audio",
    "run_seed_system",
    "system_spec",
]

log = logging.getLogger("auditagent.simulators.systems")

SEED_SYSTEMS: tuple[str, ...] = (
    "pipeline-deepgram",
    "pipeline-whisper",
    "openai-realtime",
    "gemini-live",
)

# The course's agent, verbatim.
SEED_INSTRUCTIONS = "You are a helpful assistant."

CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SystemSpec:
    """What a seed system is built from; the record should say the same."""

    name: str
    architecture: str  # "pipeline" | "realtime"
    models: dict[str, tuple[str, str]] = field(default_factory=dict)
    """slot (stt/llm/tts/realtime) -> (model, provider as the course names it)."""


_SPECS: dict[str, SystemSpec] = {
    "pipeline-deepgram": SystemSpec(
        "pipeline-deepgram",
        "pipeline",
        {
            "stt": ("nova-3", "deepgram"),
            "llm": ("gpt-4o", "openai"),
            "tts": ("sonic-3", "cartesia"),
        },
    ),
    "pipeline-whisper": SystemSpec(
        "pipeline-whisper",
        "pipeline",
        {
            "stt": ("whisper-1", "openai"),
            "llm": ("gpt-4o", "openai"),
            "tts": ("sonic-3", "cartesia"),
        },
    ),
    "openai-realtime": SystemSpec(
        "openai-realtime", "realtime", {"realtime": ("gpt-4o-realtime-preview", "openai")}
    ),
    "gemini-live": SystemSpec(
        "gemini-live",
        "realtime",
        {"realtime": ("gemini-2.5-flash-native-audio-preview-12-2025", "gemini")},
    ),
}


def system_spec(name: str) -> SystemSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown seed system {name!r}; one of {', '.join(SEED_SYSTEMS)}"
        ) from None


MIC_RATE = 24000
# The realtime simulators and Cartesia (as the plugin asks for it) speak at 24 kHz.
AGENT_RATE = 24000
_warm_lock = threading.Lock()


def _synthesize_all(scenario: script.Scenario) -> None:
    # Under the lock, concurrent runs wait for one synthesis instead of repeating it.
    with _warm_lock:
        for text in scenario.user_lines:
            script.user_speech(text, MIC_RATE)
        for reply in scenario.agent_replies:
            script.agent_speech(reply.text, AGENT_RATE)
            # Cartesia is sent sentence chunks with a trailing space (LiveKit's tokenizer);
            # the long one-sentence reply is the chunk that matters
            script.agent_speech(reply.text + " ", AGENT_RATE)


async def prepare_audio(scenario: script.Scenario) -> None:
    """Synthesize every line of the scenario off the event loop (``script`` caches it).

    Done on the loop, the long reply alone blocks it for most of a second, in the middle of
    other sessions' real-time audio (their VAD then hears a barge-in seconds late).
    """
    await asyncio.to_thread(_synthesize_all, scenario)


def _lookup_tool(scenario: script.Scenario) -> lk_llm.FunctionTool[Any, Any]:
    call = next((t for t in scenario.tool_calls if t.name == "lookup_appointment"), None)
    if call is None:
        raise ValueError("the scenario has no lookup_appointment tool call")
    result = call.result_json

    async def lookup_appointment(reference: str) -> str:
        # The simulated model always asks for the scripted reference; answering every
        # reference alike keeps the tool honest about what it was asked.
        return result

    return lk_llm.function_tool(
        lookup_appointment, name="lookup_appointment", description=scenario.tool_description
    )


class SeedAgent(Agent):
    """The course's agent: seed instructions, the appointment tool, greets on entering."""

    def __init__(self, scenario: script.Scenario) -> None:
        super().__init__(instructions=SEED_INSTRUCTIONS, tools=[_lookup_tool(scenario)])

    async def on_enter(self) -> None:
        self.session.generate_reply()


def _pipeline_session(stt: Any, llm: Any, tts: Any, *, speed: float) -> AgentSession[None]:
    return AgentSession(
        stt=stt,
        vad=EnergyVAD(),
        llm=llm,
        tts=tts,
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.3 / speed, "max_delay": 2.0},
            "interruption": {
                "mode": "vad",
                "min_duration": 0.3 / speed,
                "resume_false_interruption": False,
                "false_interruption_timeout": None,
            },
            # A preemptive reply started on an interim transcript is a second chat request
            # the simulator answers; keep one request per turn.
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )


def _realtime_session(model: lk_llm.RealtimeModel) -> AgentSession[None]:
    # vad=None: the default is LiveKit's remote inference VAD, and server-side turn
    # detection of the realtime model is what these systems use anyway.
    return AgentSession(
        llm=model,
        vad=None,
        turn_handling={
            # said outright: left to auto-selection LiveKit also looks for its default
            # turn detector, which needs a VAD model
            "turn_detection": "realtime_llm",
            "interruption": {
                "resume_false_interruption": False,
                "false_interruption_timeout": None,
            },
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )


def _build(
    name: str,
    sim: SimulatorServer,
    *,
    input_transcription: bool,
    output_transcription: bool,
    speed: float,
) -> tuple[AgentSession[None], list[Any]]:
    """The session and the plugin objects it uses (closed by the caller)."""
    if name in ("pipeline-deepgram", "pipeline-whisper"):
        stt = deepgram_stt(sim, model="nova-3") if name == "pipeline-deepgram" else whisper_stt(sim)
        llm = openai_llm(sim, model="gpt-4o")
        tts = cartesia_tts(sim)
        return _pipeline_session(stt, llm, tts, speed=speed), [stt, llm, tts]
    if name == "openai-realtime":
        model = openai_realtime(
            sim,
            input_transcription=input_transcription,
            model="gpt-4o-realtime-preview",
            voice="alloy",
        )
        return _realtime_session(model), [model]
    if name == "gemini-live":
        model = gemini_live(
            sim, input_transcription=input_transcription, output_transcription=output_transcription
        )
        return _realtime_session(model), [model]
    system_spec(name)  # raises the helpful error
    raise AssertionError("unreachable")


async def _aclose_quietly(obj: Any, what: str) -> None:
    close = getattr(obj, "aclose", None)
    if close is None:
        return
    try:
        await asyncio.wait_for(close(), CLOSE_TIMEOUT_S)
    except Exception as exc:  # teardown must not hide the run's own outcome
        log.warning("closing %s failed: %s", what, type(exc).__name__)


async def run_seed_system(
    name: str,
    *,
    sim: SimulatorServer,
    recorder: AuditRecorder,
    tenant: str,
    participant: str | None = None,
    input_transcription: bool = True,
    output_transcription: bool = True,
    timeout: float = 60,
    speed: float = 1.0,
) -> SessionRecording:
    """Run seed system ``name`` through the whole scenario; return its recording.

    ``input_transcription``/``output_transcription`` apply to the realtime models (what a
    user constructing them with transcription off would get). The recorder's own checks run
    at attach, so a refused model raises ``TranscriptionDisabled`` from here before any audio
    flows. ``timeout`` bounds the conversation; start and close have their own bounds.
    Raises ``SeedSystemError`` when the conversation does not play out.
    """
    system_spec(name)
    scenario = sim.scenario
    await prepare_audio(scenario)
    async with utils.http_context.open():
        session, plugins = _build(
            name,
            sim,
            input_transcription=input_transcription,
            output_transcription=output_transcription,
            speed=speed,
        )
        mic = ScenarioMic(sample_rate=MIC_RATE, speed=speed)
        speaker = ClockedAudioOutput(sample_rate=24000, speed=speed)
        sync = TranscriptSynchronizer(
            next_in_chain_audio=speaker, next_in_chain_text=CollectingTextOutput()
        )
        session.input.audio = mic
        session.output.audio = sync.audio_output
        session.output.transcription = sync.text_output
        watch = Watch(name, session)
        try:
            rec = recorder.attach(
                session, tenant=tenant, participant=participant, labels={"system": name}
            )
            try:
                await asyncio.wait_for(session.start(SeedAgent(scenario)), STEP_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise SeedSystemError(f"{name}: session.start did not finish") from None
            try:
                await asyncio.wait_for(play(watch, mic, scenario, speed=speed), timeout)
            except asyncio.TimeoutError:
                raise SeedSystemError(
                    f"{name}: the scenario did not finish in {timeout:.0f}s; {watch.describe()}"
                ) from None
        finally:
            mic.close()
            await _aclose_quietly(session, f"{name} session")
            await _aclose_quietly(sync, f"{name} transcript synchronizer")
            await _aclose_quietly(speaker, f"{name} audio output")
            for p in plugins:
                await _aclose_quietly(p, f"{name} {type(p).__name__}")
    return rec
