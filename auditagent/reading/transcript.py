"""Transcripts: sealed records, once opened, shaped into the lines a reviewer reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic_core import to_json

from auditagent import records
from auditagent.reading.decrypt import OpenedRecord

__all__ = [
    "EntryKind",
    "Timing",
    "TranscriptEntry",
    "transcript_entries",
    "transcript_entry_dicts",
    "transcript_json",
]


EntryKind = Literal[
    "user",
    "agent",
    "tool_call",
    "tool_result",
    "handoff",
    "error",
    "notice",
    "gap",
    "opened",
    "closed",
    "agent_config_updated",
    "transcription_enabled",
]


class Timing(BaseModel):
    """What was measured for this turn, in seconds, from the turn_timing records attached to it.

    Only measured fields are set: a provider that reports nothing for a field leaves it out and
    says why in ``not_reported`` (Gemini Live reports no first-audio time).
    """

    model_config = ConfigDict(extra="forbid")

    transcription_delay: float | None = None
    end_of_utterance_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    realtime_ttft: float | None = None
    """A realtime model's time to first audio, as the model reported it."""
    llm_duration: float | None = None
    """A realtime model's generation time, as it reported it."""
    e2e_latency: float | None = None
    tokens: records.TokenCounts | None = None
    not_reported: dict[str, str] | None = None
    """Field -> why the provider reported no value."""


class TranscriptEntry(BaseModel):
    """One human-readable line of a conversation.

    Each kind carries only the fields that apply to it (the API leaves the others out):
    user: text, interrupted, input_mode, started/ended_at, timing; agent: text,
    generated_text (when it differs), heard_text_known, interrupted, started/ended_at, timing;
    tool_call: name, call_id, arguments; tool_result: name, call_id, output, is_error;
    handoff: name (the new agent), text ("old -> new"); error: name, text, is_error;
    notice: name (its code), text; gap: text; opened: name; closed: text (the reason),
    is_error; agent_config_updated: text; transcription_enabled: name. Every entry has seq,
    at, kind and provenance.
    """

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: datetime
    kind: EntryKind
    provenance: records.Provenance = "live"
    """``reconciled``: found in LiveKit's history at close, not delivered by an event."""
    text: str | None = None
    """User: the final transcript. Agent: what the user heard (see ``heard_text_known``)."""
    input_mode: records.InputMode | None = None
    """User only: ``speech`` or ``text`` (typed, or passed as ``user_input``)."""
    generated_text: str | None = None
    """Agent only: the full generated text, when it differs from what was heard."""
    heard_text_known: bool | None = None
    interrupted: bool | None = None
    name: str | None = None
    """Tool name (tool_call/tool_result), new agent (handoff), error source, notice code."""
    call_id: str | None = None
    arguments: str | None = None
    output: str | None = None
    is_error: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    timing: Timing | None = None


_TIMING_VALUES = (
    "transcription_delay",
    "end_of_utterance_delay",
    "llm_ttft",
    "tts_ttfb",
    "realtime_ttft",
    "llm_duration",
    "e2e_latency",
)
_TIMING_FIELDS = (*_TIMING_VALUES, "tokens", "not_reported")


def _agent_label(name: str | None, agent_id: str | None) -> str | None:
    return name or agent_id


def _entry(o: OpenedRecord, r: records.Record) -> dict[str, Any] | None:
    """The fields that apply to this record's kind, in ``TranscriptEntry``'s field order (so
    that serializing the dict gives the same bytes as the model's ``exclude_unset`` dump);
    None for kinds not listed."""
    seq, at, prov = o.seq, r.at, r.provenance
    # Exact types: pydantic's metaclass makes isinstance a Python-level call (~7% of a request).
    if type(r) is records.UserUtterance:
        return {
            "seq": seq,
            "at": at,
            "kind": "user",
            "provenance": prov,
            "text": r.text,
            "input_mode": r.input_mode,
            "interrupted": r.interrupted,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        }
    if type(r) is records.AgentUtterance:
        entry: dict[str, Any] = {
            "seq": seq,
            "at": at,
            "kind": "agent",
            "provenance": prov,
            "text": r.text,
        }
        if r.generated_text is not None and r.generated_text != r.text:
            entry["generated_text"] = r.generated_text
        entry["heard_text_known"] = r.heard_text_known
        entry["interrupted"] = r.interrupted
        entry["started_at"] = r.started_at
        entry["ended_at"] = r.ended_at
        return entry
    if type(r) is records.ToolCall:
        return {
            "seq": seq,
            "at": at,
            "kind": "tool_call",
            "provenance": prov,
            "name": r.name,
            "call_id": r.call_id,
            "arguments": r.arguments,
        }
    if type(r) is records.ToolResult:
        return {
            "seq": seq,
            "at": at,
            "kind": "tool_result",
            "provenance": prov,
            "name": r.name,
            "call_id": r.call_id,
            "output": r.output if not r.is_error else (r.exception or r.output),
            "is_error": r.is_error,
        }
    base: dict[str, Any] = {"seq": seq, "at": at}
    if type(r) is records.Handoff:
        new = _agent_label(r.new_agent_name, r.new_agent_id)
        old = _agent_label(r.old_agent_name, r.old_agent_id)
        # LiveKit records the first agent's start as a handoff from no agent
        return {
            **base,
            "kind": "handoff",
            "provenance": prov,
            "text": f"{old or '(session start)'} -> {new or '(unknown agent)'}",
            "name": new,
        }
    if type(r) is records.ErrorRecord:
        return {
            **base,
            "kind": "error",
            "provenance": prov,
            "text": r.message,
            "name": r.source,
            "is_error": True,
        }
    if type(r) is records.Notice:
        return {**base, "kind": "notice", "provenance": prov, "text": r.message, "name": r.code}
    if type(r) is records.Gap:
        text = f"{r.count} records lost: {r.reason}"
        return {**base, "kind": "gap", "provenance": prov, "text": text}
    if type(r) is records.Opened:
        return {**base, "kind": "opened", "provenance": prov, "name": r.agent_name}
    if type(r) is records.Closed:
        return {
            **base,
            "kind": "closed",
            "provenance": prov,
            "text": r.reason,
            "is_error": r.error is not None,
        }
    if type(r) is records.AgentConfigUpdated:
        return {**base, "kind": "agent_config_updated", "provenance": prov, "text": r.instructions}
    if type(r) is records.TranscriptionEnabled:
        return {
            **base,
            "kind": "transcription_enabled",
            "provenance": prov,
            "name": r.transcription_model,
        }
    if type(r) is records.RecordingNotice:
        said = (
            "said in full" if r.completed else ("spoken over" if r.spoken_over else "not completed")
        )
        text = f"recording notice {said}"
        return {**base, "kind": "notice", "provenance": prov, "text": text, "name": r.kind}
    if type(r) is records.RecordingFailed:
        text = f"recording failed: {r.reason}"
        return {**base, "kind": "gap", "provenance": prov, "text": text, "name": r.kind}
    return None


def _merge_timing(into: dict[str, Any], r: records.TurnTiming) -> None:
    for f in _TIMING_VALUES:
        value = getattr(r, f)
        if value is not None:
            into[f] = value
    if r.tokens is not None and "tokens" not in into:
        into["tokens"] = r.tokens.model_dump(exclude_unset=True)
    if r.not_reported:
        reasons = into.setdefault("not_reported", {})
        reasons.update(r.not_reported)


def transcript_entries(opened: Iterable[OpenedRecord]) -> list[TranscriptEntry]:
    """Shape records into transcript entries, in the order things happened (time, then seq).

    turn_timing is folded into the turn it measures rather than listed: by item id, else by
    the provider's response id (a realtime model's own figures, which may arrive before the
    turn's message), else the latest utterance of that role.
    """
    # One validation call for the whole list: building ~2,000 models one by one costs a
    # Python-level __init__ each. The fields set are still exactly the keys of each dict.
    return _ENTRIES.validate_python(transcript_entry_dicts(opened))


def transcript_entry_dicts(opened: Iterable[OpenedRecord]) -> list[dict[str, Any]]:
    """What :func:`transcript_entries` returns, as plain dicts holding exactly the fields each
    entry sets, in the model's field order: ``transcript_json`` serializes them to the same
    bytes as the models' ``exclude_unset`` dump, without building the models."""
    # Plain dicts while timings are folded in; each model is built once at the end.
    entries: list[dict[str, Any]] = []
    by_item: dict[str, int] = {}
    last_of: dict[str, int] = {}
    # (timing record, index it falls back to by role at the time it was recorded)
    pending: list[tuple[records.TurnTiming, int | None]] = []
    for o in opened:
        r = o.record
        if type(r) is records.TurnTiming:
            pending.append((r, last_of.get(r.role) if r.role is not None else None))
            continue
        entry = _entry(o, r)
        if entry is None:
            continue
        if entry["kind"] == "user":
            last_of["user"] = len(entries)
        elif entry["kind"] == "agent":
            last_of["assistant"] = len(entries)
        item_id = getattr(r, "item_id", None)
        if isinstance(item_id, str) and item_id:
            by_item[item_id] = len(entries)
        entries.append(entry)

    by_request: dict[str, int] = {}
    resolved: list[tuple[records.TurnTiming, int | None, int | None]] = []
    for r, fallback in pending:
        target = by_item.get(r.item_id) if r.item_id else None
        if target is None and r.speech_id:
            target = by_item.get(r.speech_id)
        if target is not None and r.request_id:
            by_request[r.request_id] = target
        resolved.append((r, target, fallback))
    timings: dict[int, dict[str, Any]] = {}
    mixed: set[int] = set()
    for r, target, fallback in resolved:
        if target is None and r.request_id:
            target = by_request.get(r.request_id)
        if target is None:
            target = fallback
        if target is not None:
            timing = timings.get(target)
            if timing is None:
                timings[target] = timing = {}
            elif target not in mixed:
                mixed.add(target)
            _merge_timing(timing, r)

    for i, timing in timings.items():
        # One record's figures go in field order already; several may interleave.
        entries[i]["timing"] = (
            {k: timing[k] for k in _TIMING_FIELDS if k in timing} if i in mixed else timing
        )
    entries.sort(key=_order)
    return entries


def transcript_json(
    session_id: uuid.UUID,
    entries: list[dict[str, Any]],
    integrity: dict[str, Any] | None,
    *,
    audio: dict[str, Any] | None = None,
) -> bytes:
    """A transcript document as JSON: the bytes pydantic gives for the API's ``Transcript``
    model dumped with ``exclude_unset`` (same serializer, same key order), for entries from
    :func:`transcript_entry_dicts`, ``integrity`` as ``{ok, first_bad_seq, reason}`` and the
    recording's ``audio`` block when the session has one (left out otherwise, as unset)."""
    doc: dict[str, Any] = {"session_id": session_id, "entries": entries, "integrity": integrity}
    if audio is not None:
        doc["audio"] = audio
    return to_json(doc)


def _order(entry: dict[str, Any]) -> tuple[datetime, int]:
    return entry["at"], entry["seq"]


_ENTRIES: TypeAdapter[list[TranscriptEntry]] = TypeAdapter(list[TranscriptEntry])
