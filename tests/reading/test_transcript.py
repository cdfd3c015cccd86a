"""reading.transcript without a database: opened records become the lines a reviewer reads,
with each turn_timing folded into the turn it measures."""

from __future__ import annotations

from auditagent.integrity import crypto
from auditagent.reading.decrypt import read_verified
from auditagent.reading.transcript import transcript_entries
from tests.support.sealed import Sealed


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
