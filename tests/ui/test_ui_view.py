"""What the session page draws, from transcript entries: the waterfall's rows and budget, the
timeline's pairing of tool calls with their results, the unheard part of a reply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from auditagent_api.ui import view

from auditagent.reading.transcript import Timing, TranscriptEntry

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


def entry(seq: int, kind: str, **kw: object) -> TranscriptEntry:
    return TranscriptEntry(seq=seq, at=T0 + timedelta(seconds=seq), kind=kind, **kw)  # type: ignore[arg-type]


def test_pipeline_rows_chain_end_of_utterance_llm_and_tts() -> None:
    entries = [
        entry(1, "agent", text="Hello", timing=Timing(llm_ttft=0.2, tts_ttfb=0.1)),
        entry(2, "user", text="hi", timing=Timing(end_of_utterance_delay=0.5)),
        entry(3, "agent", text="Yes", timing=Timing(llm_ttft=0.6, tts_ttfb=0.3, e2e_latency=1.5)),
    ]
    chart = view.waterfall(entries, "pipeline")
    assert chart.budget == (500, 1200)
    greeting, answer = chart.rows
    assert [(b.key, b.start_ms, b.ms) for b in greeting.bars] == [
        ("llm", 0.0, 200.0),
        ("tts", 200.0, 100.0),
    ]
    assert [(b.key, round(b.start_ms), round(b.ms)) for b in answer.bars] == [
        ("eou", 0, 500),
        ("llm", 500, 600),
        ("tts", 1100, 300),
    ]
    assert answer.total_ms == 1400.0 and answer.e2e_ms == 1500.0
    assert chart.over_budget == 1
    assert chart.scale_ms >= 1500 and chart.x(0) == chart.label_w


def test_realtime_rows_use_the_models_first_audio_and_say_what_was_not_reported() -> None:
    entries = [
        entry(1, "agent", text="Hi", timing=Timing(realtime_ttft=0.25)),
        entry(2, "agent", text="Hm", timing=Timing(not_reported={"realtime_ttft": "no event"})),
    ]
    chart = view.waterfall(entries, "realtime")
    assert chart.budget == (200, 500)
    assert [b.key for b in chart.rows[0].bars] == ["rt"]
    assert chart.rows[1].bars == [] and chart.rows[1].not_reported == {"realtime_ttft": "no event"}


def test_a_tool_result_is_drawn_with_its_call_and_the_unheard_part_is_the_tail() -> None:
    entries = [
        entry(0, "opened"),
        entry(1, "tool_call", name="lookup", call_id="c1", arguments="{}"),
        entry(2, "tool_result", name="lookup", call_id="c1", output="boom", is_error=True),
        entry(3, "tool_result", name="other", call_id="c9", output="orphan"),
        entry(4, "agent", text="I found", generated_text="I found it.", interrupted=True),
    ]
    items = view.timeline(entries, T0 + timedelta(seconds=0.5))
    assert [i.kind for i in items] == ["opened", "tool_call", "tool_result", "agent"]
    assert items[0].offset == 0.0  # the first record, not the session row, starts the clock
    assert items[1].result is not None and items[1].result.is_error
    assert items[3].unheard == " it."


def test_a_rows_total_sits_after_its_bars_unless_the_e2e_tick_would_cross_it() -> None:
    far = entry(3, "agent", text="a", timing=Timing(llm_ttft=0.2, tts_ttfb=0.1, e2e_latency=1.2))
    near = entry(4, "agent", text="b", timing=Timing(llm_ttft=0.2, tts_ttfb=0.1, e2e_latency=0.32))
    chart = view.waterfall([far, near], "pipeline")
    first, second = chart.rows
    assert chart.label_x(first) == chart.x(300) + 6
    assert chart.label_x(second) == chart.x(320) + 6


def test_a_turn_seeks_to_where_it_started_in_the_recording() -> None:
    from auditagent_api.ui.audio_pages import Player

    player = Player(
        url="/ui/sessions/x/audio",
        started_at=T0 + timedelta(seconds=0.5),
        seconds=20.0,
        complete=True,
        integrity=None,
    )
    spoke = entry(4, "user", text="hi", started_at=T0 + timedelta(seconds=2.25))
    assert player.seek(spoke) == 1.75  # where the speaking started, not when it was final
    assert player.seek(entry(6, "agent", text="Yes")) == 5.5  # no start reported: its `at`
    assert player.seek(entry(0, "agent", text="early")) == 0.0
    assert player.seek(entry(21, "user", text="after the recording ended")) is None
    assert player.seek(entry(3, "tool_call", name="lookup")) is None
    assert (Player.position(5.5), Player.position(75.25)) == ("0:05.5", "1:15.2")
