"""reading.transcript without a database: opened records become the lines a reviewer reads,
with each turn_timing folded into the turn it measures."""

from __future__ import annotations

from datetime import timedelta

from auditagent import records
from auditagent import records as r
from auditagent.integrity import crypto
from auditagent.reading.decrypt import read_verified
from auditagent.reading.transcript import (
    transcript_entries,
    transcript_entry_dicts,
    transcript_json,
)
from tests.support.sealed import T0, Sealed, seal


def test_entries_in_order_with_timings_folded(sealed: Sealed) -> None:
    opened, _ = read_verified(crypto.Sealer(sealed.key), sealed.session, sealed.tuples())
    entries = transcript_entries(opened)
    assert [e.kind for e in entries] == [
        "opened",
        "user",
        "agent",
        "tool_call",
        "tool_result",
        "closed",
    ]
    user, agent = entries[1], entries[2]
    assert user.text == "my zebrafinch is late"
    # by item id: the assistant's figures; by role (latest user turn): the end of utterance
    assert agent.timing is not None
    assert (agent.timing.llm_ttft, agent.timing.tts_ttfb) == (0.25, 0.125)
    assert user.timing is not None and user.timing.end_of_utterance_delay == 0.5
    assert entries[3].arguments == '{"id": 7}' and entries[4].output == "shipped"
    assert entries[0].name == "intake"
    assert entries[-1].text == "participant_disconnected" and entries[-1].is_error is False
    # only the fields of each kind are set (the API leaves the others out)
    assert "arguments" not in user.model_fields_set
    assert [e.seq for e in entries] == [0, 1, 2, 4, 5, 7]


def _every_kind() -> list[records.Record]:
    at = [T0 + timedelta(milliseconds=137 * i) for i in range(20)]
    return [
        r.Opened(at=at[0], tenant="acme", architecture="realtime", agent_name="intake"),
        r.TranscriptionEnabled(
            at=at[1], model=r.ModelInfo(model="rt", provider="p"), transcription_model="stt-x"
        ),
        # a realtime model's figures before its turn's message, tied by request id
        r.TurnTiming(
            at=at[2],
            role="assistant",
            request_id="resp_1",
            realtime_ttft=1e-7,
            llm_duration=12345678.5,
            tokens=r.TokenCounts(prompt=3, total=9),
            not_reported={"tts_ttfb": "audio out of band"},
            source="realtime_metrics",
        ),
        r.UserUtterance(
            at=at[3],
            text='zebrafinch "quoted" \\ tab\there é 漢字 \x01 \u2028',
            source="stt",
            item_id="u1",
            input_mode="text",
            started_at=at[2],
            ended_at=at[3],
        ),
        r.TurnTiming(at=at[4], role="user", transcription_delay=0.1, source="eou_metrics"),
        r.AgentUtterance(
            at=at[5],
            text="heard part",
            generated_text="heard part and the rest",
            heard_text_known=False,
            interrupted=True,
            item_id="a1",
        ),
        r.TurnTiming(
            at=at[6],
            item_id="a1",
            request_id="resp_1",
            e2e_latency=0.75,
            llm_ttft=2.0,
            source="chat_message",
        ),
        r.ToolCall(at=at[7], call_id="c1", name="lookup", arguments='{"id": 7}'),
        r.ToolResult(
            at=at[7], call_id="c1", name="lookup", output="x", is_error=True, exception="Boom"
        ),
        r.Handoff(at=at[8], new_agent_name="billing", old_agent_id="agent-1"),
        r.Handoff(at=at[9]),
        r.ErrorRecord(at=at[10], source="llm", message="rate limited"),
        r.Notice(at=at[11], code="compat", message="degraded"),
        r.Gap(at=at[12], count=3, reason="queue full"),
        r.AgentConfigUpdated(at=at[13], instructions=None),
        r.AgentUtterance(at=at[14], text="same", generated_text="same", provenance="reconciled"),
        r.Closed(at=at[19], reason="error", error="boom"),
    ]


def test_transcript_json_is_the_models_exclude_unset_bytes() -> None:
    """The route serializes the dicts directly; the bytes must be the API model's."""
    from auditagent_api.schemas import Transcript, TranscriptIntegrity

    s = seal(_every_kind())
    opened, result = read_verified(crypto.Sealer(s.key), s.session, s.tuples())
    entries = transcript_entries(opened)
    assert {e.kind for e in entries} >= {"transcription_enabled", "handoff", "gap", "notice"}
    integrity = {"ok": result.ok, "first_bad_seq": None, "reason": "why \u00e9"}
    model = Transcript(
        session_id=s.session.id,
        entries=entries,
        integrity=TranscriptIntegrity(**integrity),
    )
    fast = transcript_json(s.session.id, transcript_entry_dicts(opened), integrity)
    assert fast == model.model_dump_json(exclude_unset=True).encode()
    assert Transcript.model_validate_json(fast) == model
