"""The confirm step decides: no false positive, phrases in order, snippets around the match."""

from __future__ import annotations

from datetime import datetime, timezone

from auditagent import records
from auditagent.search.confirm import match_session, snippet
from auditagent.search.query import parse_query

AT = datetime.now(timezone.utc)


def _session() -> list[tuple[int, datetime, records.Record]]:
    return [
        (0, AT, records.Opened(at=AT, tenant="t", architecture="pipeline")),
        (1, AT, records.UserUtterance(at=AT, text="I want a chargeback now", source="stt")),
        (2, AT, records.AgentUtterance(at=AT, text="That rate is GUARANTEED, sir.")),
        (3, AT, records.ToolCall(at=AT, call_id="c", name="transfer_funds", arguments="{}")),
        (
            4,
            AT,
            records.ToolResult(
                at=AT,
                call_id="c",
                name="transfer_funds",
                is_error=True,
                exception="insufficient zebrafinch",
            ),
        ),
    ]


def test_all_clauses_must_be_found() -> None:
    m = match_session(parse_query("chargeback guaranteed"), _session(), role=None)
    assert m is not None and [h.seq for h in m.hits] == [1, 2]
    assert match_session(parse_query("chargeback unicorn"), _session(), role=None) is None


def test_role_filter() -> None:
    assert match_session(parse_query("chargeback"), _session(), role="agent") is None
    m = match_session(parse_query("guaranteed"), _session(), role="agent")
    assert m is not None and m.hits[0].role == "agent"
    m = match_session(parse_query('"transfer_funds" zebrafinch'), _session(), role="tool")
    assert m is not None and {h.seq for h in m.hits} == {3, 4}


def test_phrases_match_in_order_and_adjacent() -> None:
    assert match_session(parse_query('"rate is guaranteed"'), _session(), role=None)
    assert match_session(parse_query('"guaranteed rate"'), _session(), role=None) is None
    assert match_session(parse_query('"want chargeback"'), _session(), role=None) is None


def test_snippet_marks_the_match() -> None:
    m = match_session(parse_query("guaranteed"), _session(), role=None)
    assert m is not None
    hit = m.hits[0]
    assert hit.snippet[hit.match_start : hit.match_end] == "GUARANTEED"
    text = "a " * 100 + "zebrafinch" + " b" * 100
    start = text.index("zebrafinch")
    cut, s, e = snippet(text, start, start + 10)
    assert cut.startswith("…") and cut.endswith("…") and len(cut) < 140
    assert cut[s:e] == "zebrafinch"
