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
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit.agents import Agent, AgentSession, utils
from livekit.agents import llm as lk_llm
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from . import script
from .audio_io import ClockedAudioOutput, CollectingTextOutput, EnergyVAD, ScenarioMic
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
    from ..recorder import AuditRecorder, SessionRecording

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

# Seconds of the long reply the user hears before talking over it. Gemini's simulator only
# honours a barge-in while it is still sending audio (pace x faster than real time), so this
# must stay well below len(reply) * AGENT_SECONDS_PER_CHAR / pace.
BARGE_IN_AFTER_S = 1.2
# Pause the user leaves after the agent finishes before speaking the next line.
USER_GAP_S = 0.3
# Longest a single conversational step (a reply, a state change) may take.
STEP_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 10.0


class SeedSystemError(RuntimeError):
    """A seed system did not play its scenario (timeout, session error, early close)."""


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


class _Watch:
    """Session state the driver waits on, fed by (sync, constant-time) event handlers."""

    def __init__(self, name: str, session: AgentSession[None]) -> None:
        self.name = name
        self.session = session
        self.assistant: list[lk_llm.ChatMessage] = []
        self.user: list[lk_llm.ChatMessage] = []
        self.errors: list[str] = []
        self.closed: str | None = None
        self._changed = asyncio.Event()
        session.on("conversation_item_added", self._on_item)
        session.on("agent_state_changed", self._on_change)
        session.on("user_state_changed", self._on_change)
        session.on("error", self._on_error)
        session.on("close", self._on_close)

    def _on_item(self, ev: Any) -> None:
        item = ev.item
        if isinstance(item, lk_llm.ChatMessage):
            (self.assistant if item.role == "assistant" else self.user).append(item)
        self._changed.set()

    def _on_change(self, ev: Any) -> None:
        self._changed.set()

    def _on_error(self, ev: Any) -> None:
        err = getattr(ev, "error", None)
        recoverable = getattr(err, "recoverable", None)
        self.errors.append(f"{type(err).__name__} (recoverable={recoverable})")
        self._changed.set()

    def _on_close(self, ev: Any) -> None:
        self.closed = str(getattr(ev, "reason", "closed"))
        self._changed.set()

    @property
    def state(self) -> str:
        return str(self.session.agent_state)

    def describe(self) -> str:
        return (
            f"agent_state={self.state}, assistant messages={len(self.assistant)}, "
            f"user messages={len(self.user)}, errors={self.errors or 'none'}"
        )

    async def until(self, pred: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            if pred():
                return
            if self.closed is not None:
                raise SeedSystemError(
                    f"{self.name}: session closed ({self.closed}) while waiting for {what}; "
                    f"{self.describe()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SeedSystemError(
                    f"{self.name}: timed out after {timeout:.0f}s waiting for {what}; "
                    f"{self.describe()}"
                )
            # state changes are evented; the short cap also re-checks conditions that are not
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))


async def _play(
    watch: _Watch, mic: ScenarioMic, scenario: script.Scenario, *, speed: float
) -> None:
    """Speak every user line at its moment; the barge-in line over the agent's long reply."""
    lines = [t for t in scenario.turns if isinstance(t, script.UserLine)]

    def replies(idx: int | None) -> int:
        return sum(1 for s in scenario.steps_after(idx) if isinstance(s, script.AgentReply))

    expected = replies(None)

    def settled() -> bool:
        return len(watch.assistant) >= expected and watch.state == "listening"

    await watch.until(settled, "the greeting", STEP_TIMEOUT_S)
    for i, line in enumerate(lines):
        if not line.barge_in:
            await watch.until(settled, f"the reply before user line {i}", STEP_TIMEOUT_S)
            await asyncio.sleep(USER_GAP_S / speed)
        if line.barge_in and watch.state != "speaking":
            raise SeedSystemError(
                f"{watch.name}: the agent stopped speaking before the barge-in; {watch.describe()}"
            )
        spoken = mic.say(line.text)
        seconds = script.speech_seconds(line.text) / speed
        try:
            await asyncio.wait_for(spoken, seconds + 5.0)
        except asyncio.TimeoutError:
            raise SeedSystemError(f"{watch.name}: the microphone stalled on line {i}") from None
        expected += replies(i)
        if i + 1 < len(lines) and lines[i + 1].barge_in:
            # the reply to this line is the long one the next line talks over
            await watch.until(
                lambda: watch.state == "speaking", f"the agent to answer line {i}", STEP_TIMEOUT_S
            )
            await asyncio.sleep(BARGE_IN_AFTER_S / speed)
    await watch.until(settled, "the last reply", STEP_TIMEOUT_S)


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
        watch = _Watch(name, session)
        try:
            rec = recorder.attach(
                session, tenant=tenant, participant=participant, labels={"system": name}
            )
            try:
                await asyncio.wait_for(session.start(SeedAgent(scenario)), STEP_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise SeedSystemError(f"{name}: session.start did not finish") from None
            try:
                await asyncio.wait_for(_play(watch, mic, scenario, speed=speed), timeout)
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
