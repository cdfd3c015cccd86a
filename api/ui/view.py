"""What the pages draw, shaped from the API's own models: timeline items, the per-turn
latency waterfall, list rows. No reading here: the routes hand in what the API read."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from auditagent.reading.transcript import Timing, TranscriptEntry

# The seed course's latency budget, end of utterance to first audio (milliseconds).
BUDGETS: dict[str, tuple[int, int]] = {"pipeline": (500, 1200), "realtime": (200, 500)}

PAUSE_CODES = frozenset({"recording_paused", "recording_resumed"})

TIMING_LABELS = {
    "transcription_delay": "transcription",
    "end_of_utterance_delay": "end of utterance",
    "llm_ttft": "LLM first token",
    "tts_ttfb": "TTS first audio",
    "realtime_ttft": "realtime first audio",
    "llm_duration": "generation",
    "e2e_latency": "end to end",
}


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_clock(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def fmt_models(models: dict[str, Any]) -> list[str]:
    out = []
    for slot in ("stt", "llm", "tts", "realtime"):
        m = models.get(slot)
        if isinstance(m, dict):
            name = m.get("model") or "?"
            provider = m.get("provider")
            out.append(f"{slot.upper()}: {name}" + (f" ({provider})" if provider else ""))
    return out


def pretty_json(value: str | None) -> str:
    """Tool arguments and results are JSON text when the model sent JSON; shown indented."""
    if value is None:
        return ""
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return value


# --- timeline --------------------------------------------------------------------------------


@dataclass
class Item:
    entry: TranscriptEntry
    offset: float
    """Seconds since the session started."""
    result: TranscriptEntry | None = None
    """A tool call's result, shown with the call."""
    pause: bool = False

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def unheard(self) -> str | None:
        """The part of an interrupted reply that was generated but never heard."""
        e = self.entry
        if e.generated_text is None or e.text is None:
            return None
        if e.generated_text.startswith(e.text):
            return e.generated_text[len(e.text) :]
        return None


def timeline(entries: list[TranscriptEntry], started_at: datetime) -> list[Item]:
    # the first record may carry a time a moment before the session row's start
    started_at = min([started_at, *(e.at for e in entries[:1])])
    results = {e.call_id: e for e in entries if e.kind == "tool_result" and e.call_id}
    called = {e.call_id for e in entries if e.kind == "tool_call" and e.call_id}
    items: list[Item] = []
    for e in entries:
        if e.kind == "tool_result" and e.call_id in called:
            continue  # drawn with its call
        offset = (e.at - started_at).total_seconds()
        item = Item(entry=e, offset=offset, pause=e.kind == "notice" and e.name in PAUSE_CODES)
        if e.kind == "tool_call" and e.call_id:
            item.result = results.get(e.call_id)
        items.append(item)
    return items


# --- latency waterfall -----------------------------------------------------------------------

SEGMENT_LABELS = {
    "eou": "End of utterance",
    "llm": "LLM first token",
    "tts": "TTS first audio",
    "rt": "Realtime first audio",
}


@dataclass(frozen=True)
class Bar:
    key: str
    start_ms: float
    ms: float

    @property
    def label(self) -> str:
        return SEGMENT_LABELS[self.key]


@dataclass
class TurnRow:
    number: int
    at: datetime
    seq: int
    bars: list[Bar] = field(default_factory=list)
    e2e_ms: float | None = None
    not_reported: dict[str, str] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(b.ms for b in self.bars)


@dataclass
class Waterfall:
    kind: str
    budget: tuple[int, int]
    rows: list[TurnRow]
    scale_ms: float
    # geometry of the SVG (user units): label column, plot width, row height
    label_w: int = 170
    plot_w: int = 800
    row_h: int = 30
    top: int = 28

    def x(self, ms: float) -> float:
        return round(self.label_w + self.plot_w * min(ms, self.scale_ms) / self.scale_ms, 1)

    def w(self, ms: float) -> float:
        return round(max(1.0, self.plot_w * min(ms, self.scale_ms) / self.scale_ms), 1)

    def label_x(self, row: TurnRow) -> float:
        """Where a row's total goes: just after its bars, or after the end-to-end tick when
        the tick would run through the label."""
        at = self.x(row.total_ms) + 6
        if row.e2e_ms is not None and at - 8 <= self.x(row.e2e_ms) <= at + 64:
            at = self.x(row.e2e_ms) + 6
        return min(at, self.label_w + self.plot_w - 40)

    @property
    def height(self) -> int:
        return self.top + self.row_h * max(1, len(self.rows)) + 34

    @property
    def ticks(self) -> list[int]:
        step = 250 if self.scale_ms <= 2000 else 500 if self.scale_ms <= 5000 else 1000
        return list(range(0, int(self.scale_ms) + 1, step))

    @property
    def over_budget(self) -> int:
        return sum(1 for r in self.rows if r.total_ms > self.budget[1])


def _ms(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value * 1000.0


def waterfall(entries: list[TranscriptEntry], architecture: str | None) -> Waterfall:
    """One row per agent turn: the user's end-of-utterance delay (from the user turn before
    it), then the LLM's first token and the TTS's first audio, or a realtime model's first
    audio, each as LiveKit measured it."""
    kind = "realtime" if architecture == "realtime" else "pipeline"
    rows: list[TurnRow] = []
    pending_user: Timing | None = None
    for e in entries:
        if e.kind == "user":
            pending_user = e.timing
            continue
        if e.kind != "agent":
            continue
        t = e.timing or Timing()
        eou = _ms(pending_user.end_of_utterance_delay) if pending_user is not None else None
        pending_user = None
        row = TurnRow(number=len(rows) + 1, at=e.at, seq=e.seq)
        start = 0.0
        parts: list[tuple[str, float | None]] = [
            ("eou", eou),
            ("llm", _ms(t.llm_ttft)),
            ("tts", _ms(t.tts_ttfb)),
        ]
        if kind == "realtime" or t.realtime_ttft is not None:
            parts = [("eou", eou), ("rt", _ms(t.realtime_ttft))]
        for key, ms in parts:
            if ms is not None:
                row.bars.append(Bar(key, start, ms))
                start += ms
        row.e2e_ms = _ms(t.e2e_latency)
        row.not_reported = dict(t.not_reported or {})
        rows.append(row)
    longest = max([r.total_ms for r in rows] + [r.e2e_ms or 0.0 for r in rows] + [0.0])
    budget = BUDGETS[kind]
    scale = max(longest, budget[1] * 1.15)
    step = 250.0 if scale <= 2000 else 500.0
    scale = math.ceil(scale / step) * step
    return Waterfall(kind=kind, budget=budget, rows=rows, scale_ms=scale)
