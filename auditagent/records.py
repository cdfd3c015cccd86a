"""The typed record kinds a session's audit trail is made of.

Every record carries ``kind`` and ``at`` (UTC, when it happened). Those two are the only fields
the recorder keeps in plaintext; everything else, including the participant identity, lives only
inside the encrypted record. Every record also says how it was obtained (``provenance``): from an
event as it happened, or reconciled from ``session.history`` at close because no event delivered it.
Fields added after records were first written have defaults, so older records still decode.

``encode``/``decode`` use stdlib ``json`` over ``model_dump(mode="python")``, not pydantic's JSON
mode, which replaces lone surrogates in dict keys and rejects ``\\ud800`` escapes; ``json`` keeps
them. A transcript must survive whatever a provider sent.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator
from pydantic_core import PydanticSerializationError

Architecture = Literal["pipeline", "realtime", "hybrid"]
UtteranceSource = Literal["stt", "realtime", "text", "history"]
Provenance = Literal["live", "reconciled"]
InputMode = Literal["speech", "text"]
Direction = Literal["input", "output"]
_INPUT_ONLY: tuple[Direction, ...] = ("input",)


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    provenance: Provenance = "live"
    """``live``: built from an event as it happened (or by the recorder itself);
    ``reconciled``: found in ``session.history`` at close, never delivered by an event."""
    redacted: dict[str, int] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """What redaction took out of this record before it was sealed: kind -> count, never the
    value (``card_number``, ``security_code``, ...). Left out of the encoding when empty, so a
    record with nothing removed encodes as it did before redaction existed."""

    @field_validator("at", mode="after")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        # naive datetimes only ever come from our own time.time() conversions, which are UTC
        if v.tzinfo is None:
            return v.replace(tzinfo=timezone.utc)
        return v.astimezone(timezone.utc)


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    provider: str | None = None


class TranscriptionInfo(BaseModel):
    """What the recorder found about transcription at attach time, and what it changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    realtime: bool = False
    user_transcription: bool | None = None
    """None: not applicable or unknown (no realtime model)."""
    agent_transcription: bool | None = None
    session_stt: bool = False
    enabled_by_recorder: bool = False
    policy: Literal["enforce", "warn", "off"] = "enforce"
    findings: list[str] = Field(default_factory=list)


class Opened(_Base):
    kind: Literal["opened"] = "opened"
    tenant: str
    room: str | None = None
    job_id: str | None = None
    agent_name: str | None = None
    participant: str | None = None
    architecture: Architecture
    stt: ModelInfo | None = None
    llm: ModelInfo | None = None
    tts: ModelInfo | None = None
    realtime: ModelInfo | None = None
    sdk_versions: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    transcription: TranscriptionInfo = Field(default_factory=TranscriptionInfo)
    redaction: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """The redaction policy this session's records went through (``pci``, ``pii``, ``off`` or
    a custom policy's name); None in records older than redaction."""


def _history_is_reconciled(u: UserUtterance | AgentUtterance) -> None:
    # Utterances written before ``provenance`` existed said ``source="history"`` instead.
    # An "after" validator: a "before" one makes pydantic build a dict of every record's JSON
    # first (~2x slower decoding on the read path).
    if u.source == "history" and "provenance" not in u.model_fields_set:
        object.__setattr__(u, "provenance", "reconciled")  # frozen model, still validating
        u.model_fields_set.add("provenance")


class UserUtterance(_Base):
    kind: Literal["user_utterance"] = "user_utterance"
    text: str
    language: str | None = None
    speaker_id: str | None = None
    confidence: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    item_id: str | None = None
    final: bool = True
    interrupted: bool = False
    source: UtteranceSource
    """Which path produced the text: ``stt``, the ``realtime`` model's own transcription,
    ``text`` typed or passed as ``user_input`` (no speech), or ``history`` (reconciled)."""
    input_mode: InputMode | None = None
    """Whether the user spoke or typed; None only in records older than this field."""

    @model_validator(mode="after")
    def _older_records(self) -> UserUtterance:
        _history_is_reconciled(self)
        return self


class AgentUtterance(_Base):
    kind: Literal["agent_utterance"] = "agent_utterance"
    text: str
    """What the user heard (or read), as far as LiveKit could tell; see heard_text_known."""
    generated_text: str | None = None
    """The full generated text, set only when known and different from ``text``."""
    heard_text_known: bool = True
    """False when audio was interrupted with no TranscriptSynchronizer in the output chain:
    ``text`` is then the whole generated text and how much of it was played is unknown."""
    interrupted: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    item_id: str | None = None
    source: Literal["live", "history"] = "live"

    @model_validator(mode="after")
    def _older_records(self) -> AgentUtterance:
        _history_is_reconciled(self)
        return self


class ToolCall(_Base):
    kind: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: str
    """Raw string exactly as the model produced it; may not be valid JSON."""
    group_id: str | None = None
    item_id: str | None = None


class ToolResult(_Base):
    kind: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    output: str | None = None
    """The tool's result text (ToolCallEnded.message on success)."""
    is_error: bool = False
    status: str | None = None
    exception: str | None = None
    """Raw ``str(exception)`` from ToolCallEnded.message when the tool raised."""
    model_told: str | None = None
    """What FunctionCallOutput.output told the model (generic text on errors)."""
    duration_s: float | None = None
    item_id: str | None = None


class TokenCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: int | None = None
    completion: int | None = None
    total: int | None = None


class TurnTiming(_Base):
    kind: Literal["turn_timing"] = "turn_timing"
    speech_id: str | None = None
    item_id: str | None = None
    role: Literal["user", "assistant"] | None = None
    transcription_delay: float | None = None
    end_of_utterance_delay: float | None = None
    on_user_turn_completed_delay: float | None = None
    llm_ttft: float | None = None
    llm_duration: float | None = None
    tts_ttfb: float | None = None
    e2e_latency: float | None = None
    playback_latency: float | None = None
    realtime_ttft: float | None = None
    """Time to first audio of a realtime model."""
    tokens: TokenCounts | None = None
    audio_in_s: float | None = None
    audio_out_s: float | None = None
    model: ModelInfo | None = None
    source: str
    """Which LiveKit object this came from: chat_message, stt/llm/tts/eou/realtime_metrics."""
    request_id: str | None = None
    """The provider's response id: on realtime/LLM metrics, and on the assistant message's
    timing (``provider_request_ids``), which ties a realtime model's figures to its turn."""
    not_reported: dict[str, str] = Field(default_factory=dict)
    """Field name -> why the provider gave no value (e.g. Gemini reports no first-audio time)."""


class Handoff(_Base):
    kind: Literal["handoff"] = "handoff"
    old_agent_id: str | None = None
    new_agent_id: str | None = None
    old_agent_name: str | None = None
    new_agent_name: str | None = None
    item_id: str | None = None


class AgentConfigUpdated(_Base):
    kind: Literal["agent_config_updated"] = "agent_config_updated"
    instructions: str | None = None
    tools_added: list[str] = Field(default_factory=list)
    tools_removed: list[str] = Field(default_factory=list)
    item_id: str | None = None


class ErrorRecord(_Base):
    kind: Literal["error"] = "error"
    source: str
    """Class name of the failing component (LLM, STT, TTS, RealtimeModel, ...)."""
    model: ModelInfo | None = None
    recoverable: bool | None = None
    message: str


class TranscriptionEnabled(_Base):
    kind: Literal["transcription_enabled"] = "transcription_enabled"
    model: ModelInfo
    transcription_model: str
    directions: list[Direction] = Field(default_factory=lambda: list(_INPUT_ONLY))
    """What the recorder turned on: the user's speech (input), the agent's (output)."""
    agent_id: str | None = None
    agent_name: str | None = None


class Notice(_Base):
    kind: Literal["notice"] = "notice"
    code: str
    """Stable short identifier: transcription_off, user_transcription_timeout,
    false_interruption, overlapping_speech, ..."""
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class RecordingNotice(_Base):
    """The recording notice the agent said at the start of the call (``attach(notice=...)``):
    one record per time it was said."""

    kind: Literal["recording_notice"] = "recording_notice"
    text_sha256: str
    """SHA-256 (hex) of the notice text: which wording the caller heard."""
    started_at: datetime | None = None
    """When its playout started (the agent began speaking), as far as LiveKit reported it."""
    ended_at: datetime | None = None
    completed: bool
    """Played out to the end with no one speaking over it."""
    attempt: int = 1
    spoken_over: bool = False
    """The caller spoke during the playout: the notice is said again."""
    interrupted: bool = False
    error: str | None = None
    """Why it could not be said (the session closed first, no TTS, ...)."""


class RecordingFailed(_Base):
    """Written by the next process that could: when this session's records could be written
    neither to the database nor to the spool (``AUDITAGENT_REQUIRE_RECORDING``)."""

    kind: Literal["recording_failed"] = "recording_failed"
    failed_from: datetime
    failed_until: datetime | None = None
    records_lost: int = 0
    ended_session: bool = False
    reason: str


class Gap(_Base):
    kind: Literal["gap"] = "gap"
    count: int
    first_at: datetime | None = None
    last_at: datetime | None = None
    reason: str


class UsageTotal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    model: str | None = None
    provider: str | None = None
    values: dict[str, float] = Field(default_factory=dict)


class AudioChunk(_Base):
    """One sealed chunk of the call's audio, committed to the chain by its digest. ``at`` is
    where it starts on the wall clock (``started_at`` plus ``offset``), so records and audio
    share one timeline. Offsets and durations count 48 kHz samples from the recording's start.
    """

    kind: Literal["audio_chunk"] = "audio_chunk"
    index: int
    offset: int
    duration: int
    sample_rate: int = 48_000
    started_at: datetime
    """Wall-clock time of the recording's first sample."""
    size: int
    """Bytes of Ogg once opened."""
    sha256: str
    """Hex digest of the sealed chunk (``auditagent.audio.sealing.chunk_digest``)."""
    final: bool = False
    """The stream's last chunk (it ends with the end-of-stream page)."""
    late_samples: int = 0
    """48 kHz samples that came after their place was encoded (left out), since the last chunk."""


class Closed(_Base):
    kind: Literal["closed"] = "closed"
    reason: str
    error: str | None = None
    usage: list[UsageTotal] = Field(default_factory=list)


Record = Annotated[
    Union[  # noqa: UP007 - the discriminated union reads better spelled out
        Opened,
        UserUtterance,
        AgentUtterance,
        ToolCall,
        ToolResult,
        TurnTiming,
        Handoff,
        AgentConfigUpdated,
        ErrorRecord,
        TranscriptionEnabled,
        Notice,
        RecordingNotice,
        RecordingFailed,
        Gap,
        AudioChunk,
        Closed,
    ],
    Field(discriminator="kind"),
]

RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    # anything else that slipped into a free-form dict (Notice.details) is kept as text
    return repr(o)


def encode(record: Record) -> bytes:
    """Serialize one record to ASCII JSON bytes. Never raises on any content.

    ``ensure_ascii`` turns lone surrogates and NUL into ``\\uXXXX`` escapes, so the bytes are
    always valid UTF-8 and ``decode`` gives back exactly the same strings.
    """
    try:
        # pydantic's Rust serializer is ~3x faster; it refuses lone surrogates, which take the
        # stdlib path below. Both produce ASCII JSON that ``decode`` reads back identically.
        return record.__pydantic_serializer__.to_json(record, ensure_ascii=True)
    except PydanticSerializationError:
        pass
    data = record.model_dump(mode="python")
    try:
        return json.dumps(data, ensure_ascii=True, default=_json_default).encode("ascii")
    except (ValueError, TypeError, RecursionError):
        # only a pathological Notice.details (e.g. a cycle) gets here; keep the rest
        data["details"] = {"unserializable": repr(data.get("details"))[:4096]}
        return json.dumps(data, ensure_ascii=True, default=_json_default).encode("ascii")


def decode(data: bytes) -> Record:
    """Parse bytes made by ``encode`` back into the typed record.

    pydantic's Rust JSON parser is tried first (about 2.5x faster than ``json.loads`` +
    ``validate_python``). It refuses what only the stdlib fallback of ``encode`` writes (a
    ``\\ud800`` escape of a lone surrogate, ``NaN``/``Infinity``), and those records, like
    anything else it rejects, are parsed again by stdlib ``json``, which gives back exactly the
    strings that were encoded; a genuinely invalid record still raises from that second parse.
    """
    try:
        return RECORD_ADAPTER.validate_json(data)
    except ValueError:  # ValidationError is a ValueError
        return RECORD_ADAPTER.validate_python(json.loads(data))
