"""The one conversation every provider simulator plays back.

Simulators never receive the user's words: user audio is a synthetic voiced signal whose
length follows the text, and a simulator identifies "which user line is this" by counting
speech segments found from audio energy (the Nth segment is the Nth user line) or, for
one-shot uploads, by the segment's duration. Everything here is deterministic so tests,
the demo and every simulator agree on the same transcript.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

# 24 kHz is what OpenAI Realtime and Gemini output use, 16 kHz is what Deepgram (default)
# and Gemini input use; 48 kHz is LiveKit's room rate. Audio is synthesized directly at
# the requested rate so no caller ever needs a resampler.
SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100, 48000)

# Seconds of audio per character of text. Distinct line lengths then give distinct,
# measurable durations (used by the one-shot transcription endpoint).
USER_SECONDS_PER_CHAR = 0.04
AGENT_SECONDS_PER_CHAR = 0.06
MIN_SPEECH_S = 0.5

# Energy detector settings shared by every simulator: 10 ms analysis frames, a speech
# threshold well above the synthetic silence (digital zero) and well below the quietest
# syllable of the synthetic voice, and a hangover that bridges syllable dips.
FRAME_S = 0.01
ENERGY_THRESHOLD = 300.0  # RMS in int16 units
END_SILENCE_S = 0.3
MIN_SEGMENT_S = 0.1


@dataclass(frozen=True)
class UserLine:
    text: str
    # True for the line the user speaks over the agent's long reply.
    barge_in: bool = False


@dataclass(frozen=True)
class AgentReply:
    text: str
    # True for the long reply the next user line interrupts.
    interrupted: bool = False


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))

    @property
    def result_json(self) -> str:
        return json.dumps(self.result, separators=(",", ":"))


Turn = Union[UserLine, AgentReply, ToolCall]  # noqa: UP007 - runtime alias on py3.10


@dataclass(frozen=True)
class Scenario:
    """Ordered turns. Agent steps before the first user line are the greeting."""

    turns: tuple[Turn, ...]
    language: str = "en"
    tool_description: str = "Look up a patient's appointment by booking reference."
    _user_idx: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        idx = tuple(i for i, t in enumerate(self.turns) if isinstance(t, UserLine))
        object.__setattr__(self, "_user_idx", idx)
        if sum(1 for t in self.turns if isinstance(t, UserLine) and t.barge_in) > 1:
            raise ValueError("a scenario has at most one interruption")

    @property
    def user_lines(self) -> list[str]:
        return [t.text for t in self.turns if isinstance(t, UserLine)]

    @property
    def agent_replies(self) -> list[AgentReply]:
        return [t for t in self.turns if isinstance(t, AgentReply)]

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [t for t in self.turns if isinstance(t, ToolCall)]

    def steps_after(self, user_index: int | None) -> list[AgentReply | ToolCall]:
        """Agent steps answering user line `user_index` (None: the greeting).

        Indices past the end wrap around, so a long-running demo keeps cycling.
        """
        if user_index is None:
            start = 0
        else:
            if not self._user_idx:
                return []
            start = self._user_idx[user_index % len(self._user_idx)] + 1
        steps: list[AgentReply | ToolCall] = []
        for t in self.turns[start:]:
            if isinstance(t, UserLine):
                break
            steps.append(t)
        return steps

    def user_line(self, index: int) -> str:
        lines = self.user_lines
        return lines[index % len(lines)]

    def match_user_text(self, text: str) -> int | None:
        """Index of the user line this text is (normalized comparison), if any."""
        key = _normalize(text)
        for i, line in enumerate(self.user_lines):
            if _normalize(line) == key:
                return i
        return None

    def find_tool_call(self, call_id: str) -> ToolCall | None:
        return next((t for t in self.tool_calls if t.call_id == call_id), None)

    def tool_schema(self) -> dict[str, Any]:
        """JSON schema of the scripted tool, for building a matching function tool."""
        return {
            "type": "object",
            "properties": {"reference": {"type": "string"}},
            "required": ["reference"],
        }

    @property
    def interruption(self) -> tuple[int, int] | None:
        """(index into agent_replies of the interrupted reply, index of the barge-in line)."""
        replies = self.agent_replies
        reply = next((i for i, r in enumerate(replies) if r.interrupted), None)
        line = next(
            (
                i
                for i, t in enumerate(t for t in self.turns if isinstance(t, UserLine))
                if t.barge_in
            ),
            None,
        )
        if reply is None or line is None:
            return None
        return reply, line


def default_scenario() -> Scenario:
    return Scenario(
        turns=(
            AgentReply("Hello, this is Riverside Clinic. How can I help you today?"),
            UserLine("Hi, I would like to check my appointment."),
            AgentReply("Of course. What is your booking reference?"),
            UserLine("It is A B one two three."),
            ToolCall(
                call_id="call_lookup_ab123",
                name="lookup_appointment",
                arguments={"reference": "AB123"},
                result={"date": "2025-07-14", "time": "10:30", "doctor": "Dr. Patel"},
            ),
            AgentReply("I found it. Your appointment is on July 14th at 10:30 with Dr. Patel."),
            UserLine("What should I bring on the day?"),
            AgentReply(
                "Please bring your insurance card, a photo ID, a list of every medication "
                "you currently take including doses, any recent test results or imaging, "
                "the referral letter from your family doctor, and arrive fifteen minutes "
                "early so the front desk can update your details before the consultation.",
                interrupted=True,
            ),
            UserLine("Sorry, just the ID is fine, thanks.", barge_in=True),
            AgentReply("No problem. Bring your photo ID and we will see you then. Goodbye!"),
        )
    )


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# --- audio ---------------------------------------------------------------------------------


def speech_seconds(text: str, *, per_char: float = USER_SECONDS_PER_CHAR) -> float:
    return max(MIN_SPEECH_S, len(text) * per_char)


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {sample_rate}, use one of {SUPPORTED_RATES}")


# Synthesis is pure and costs ~0.8 s for the long reply at 24 kHz; simulators call it on the
# event loop that also carries real-time audio, so each line is synthesized once per process.
@functools.lru_cache(maxsize=128)
def voiced_signal(seconds: float, sample_rate: int, *, f0: float = 140.0) -> bytes:
    """A vowel-like harmonic signal with syllable-rate modulation, as PCM16 mono.

    Shaped like voice (harmonics under formant peaks, ~4 Hz syllables) rather than a pure
    tone so that speech-trained VADs are more willing to call it speech; the syllable dips
    never reach silence, so an energy detector sees one segment.
    """
    _check_rate(sample_rate)
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    pitch = f0 * (1.0 + 0.06 * np.sin(2 * math.pi * 0.7 * t))
    phase = 2 * math.pi * np.cumsum(pitch) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    nyquist = sample_rate / 2
    for k in range(1, 40):
        freq = f0 * k
        if freq >= nyquist * 0.9:
            break
        gain = sum(
            a / (1.0 + ((freq - fc) / bw) ** 2)
            for fc, bw, a in ((650.0, 120.0, 1.0), (1100.0, 150.0, 0.6), (2500.0, 250.0, 0.25))
        )
        out += gain * np.sin(k * phase) / k**0.5
    syllables = 0.7 + 0.3 * np.sin(2 * math.pi * 4.0 * t)
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t + 1.0 / sample_rate) / 0.02)
    out *= syllables * envelope
    peak = float(np.max(np.abs(out))) or 1.0
    pcm = (out / peak * 0.35 * 32767).astype("<i2")
    return pcm.tobytes()


def silence(seconds: float, sample_rate: int) -> bytes:
    _check_rate(sample_rate)
    return b"\x00\x00" * round(seconds * sample_rate)


def user_speech(text: str, sample_rate: int) -> bytes:
    """The speech segment alone for one user line (no surrounding silence)."""
    return voiced_signal(speech_seconds(text), sample_rate, f0=140.0)


def user_utterance(
    text: str, sample_rate: int, *, lead_s: float = 0.3, trail_s: float = 0.8
) -> bytes:
    """One user line as an utterance: silence, speech, then enough silence to end it."""
    return (
        silence(lead_s, sample_rate)
        + user_speech(text, sample_rate)
        + silence(trail_s, sample_rate)
    )


def user_audio_16k(text: str) -> bytes:
    return user_utterance(text, 16000)


def user_audio_24k(text: str) -> bytes:
    return user_utterance(text, 24000)


def user_audio_48k(text: str) -> bytes:
    return user_utterance(text, 48000)


def agent_speech(text: str, sample_rate: int) -> bytes:
    """Agent audio for a reply: a higher voice, AGENT_SECONDS_PER_CHAR long."""
    return voiced_signal(
        speech_seconds(text, per_char=AGENT_SECONDS_PER_CHAR), sample_rate, f0=210.0
    )


def word_timings(
    text: str, *, start: float = 0.0, per_char: float = AGENT_SECONDS_PER_CHAR
) -> list[tuple[str, float, float]]:
    """(word, start, end) for each word, time shared out by character count."""
    total = speech_seconds(text, per_char=per_char)
    words = text.split()
    weights = [len(w) + 1 for w in words]
    scale = total / max(1, sum(weights))
    out: list[tuple[str, float, float]] = []
    cursor = start
    for w, weight in zip(words, weights, strict=False):
        end = cursor + weight * scale
        out.append((w, round(cursor, 3), round(end - scale, 3)))
        cursor = end
    return out


def text_chunks(text: str, size: int = 3) -> Iterator[str]:
    """Split text into word groups that concatenate back to the exact text."""
    parts = re.findall(r"\S+\s*", text)
    for i in range(0, len(parts), size):
        yield "".join(parts[i : i + size])


def pcm_chunks(pcm: bytes, sample_rate: int, chunk_s: float = 0.1) -> Iterator[bytes]:
    step = max(2, int(sample_rate * chunk_s) * 2)
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]


@dataclass
class SpeechSegmenter:
    """Incremental energy-based speech detector over PCM16 mono.

    feed() returns ("start", t) / ("end", t) events in audio time (seconds since the first
    sample). "start" is reported MIN_SEGMENT_S late (with the true start time); "end" is
    the last voiced frame, reported once END_SILENCE_S of silence has followed it.
    """

    sample_rate: int
    threshold: float = ENERGY_THRESHOLD
    end_silence_s: float = END_SILENCE_S
    _frame: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _pos: int = 0  # samples consumed
    _in_speech: bool = False
    _start: float = 0.0
    _last_voiced: float = 0.0
    _candidate: float | None = None

    def __post_init__(self) -> None:
        self._frame = max(1, int(self.sample_rate * FRAME_S))

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position(self) -> float:
        return self._pos / self.sample_rate

    def feed(self, pcm: bytes) -> list[tuple[str, float]]:
        self._buf.extend(pcm)
        events: list[tuple[str, float]] = []
        nbytes = self._frame * 2
        while len(self._buf) >= nbytes:
            frame = np.frombuffer(bytes(self._buf[:nbytes]), dtype="<i2").astype(np.float64)
            del self._buf[:nbytes]
            t0 = self._pos / self.sample_rate
            self._pos += self._frame
            t1 = self._pos / self.sample_rate
            voiced = float(np.sqrt(np.mean(frame * frame))) >= self.threshold
            if voiced:
                if not self._in_speech:
                    # a segment starts only once it has lasted MIN_SEGMENT_S, so a click
                    # never opens (and then has to withdraw) a segment
                    if self._candidate is None:
                        self._candidate = t0
                    if t1 - self._candidate >= MIN_SEGMENT_S:
                        self._in_speech = True
                        self._start = self._candidate
                        events.append(("start", self._start))
                self._last_voiced = t1
            elif self._in_speech:
                if t1 - self._last_voiced >= self.end_silence_s:
                    self._in_speech = False
                    self._candidate = None
                    events.append(("end", self._last_voiced))
            else:
                self._candidate = None
        return events

    def flush(self) -> list[tuple[str, float]]:
        """End an open segment at end of input (no trailing silence arrived)."""
        self._candidate = None
        if self._in_speech:
            self._in_speech = False
            return [("end", self._last_voiced)]
        return []


def find_segments(pcm: bytes, sample_rate: int) -> list[tuple[float, float]]:
    """All (start, end) speech segments in a complete buffer."""
    seg = SpeechSegmenter(sample_rate)
    out: list[tuple[float, float]] = []
    start = 0.0
    for kind, t in [*seg.feed(pcm), *seg.flush()]:
        if kind == "start":
            start = t
        elif kind == "end":
            out.append((start, t))
    return out


def closest_user_line(scenario: Scenario, seconds: float) -> int:
    """User line whose synthetic speech duration is closest to `seconds`."""
    durations = [speech_seconds(line) for line in scenario.user_lines]
    return min(range(len(durations)), key=lambda i: abs(durations[i] - seconds))
