"""The end of a session: what only ``session.history`` holds, then the one ``closed`` record.

``AgentConfigUpdate`` items (and tool items whose events were missed) have no event; they are
recorded at close with ``at`` = the item's own ``created_at`` and ``provenance="reconciled"``.
This runs on the writer after everything queued before the close, so the events' records are
in first and reconciliation adds only what none delivered. Items said while recording was
paused are deliberately left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from ..records import AgentConfigUpdated, Closed, Record, UsageTotal
from .fields import utc
from .translate import Translator

logger = logging.getLogger("auditagent.capture")


class PausedWindows:
    """[start, end) wall-clock windows in which recording was paused."""

    def __init__(self) -> None:
        self._windows: list[list[float]] = []

    def pause_at(self, t: float) -> None:
        self._windows.append([t, float("inf")])

    def resume_at(self, t: float) -> None:
        if self._windows and self._windows[-1][1] == float("inf"):
            self._windows[-1][1] = t

    def covers(self, created_at: Any) -> bool:
        if not self._windows or not isinstance(created_at, (int, float)):
            return False
        return any(start <= created_at < end for start, end in self._windows)


def reconcile(session: Any, translator: Translator, paused: PausedWindows) -> list[Record]:
    """Records for what ``session.history`` holds but no event delivered."""
    out: list[Record] = []
    try:
        items: Iterable[Any] = list(session.history.items)
    except Exception:
        items = []
    for item in items:
        if paused.covers(getattr(item, "created_at", None)):
            continue  # said while recording was paused: deliberately not kept
        try:
            out.extend(_reconcile_item(translator, item))
        except Exception as e:
            logger.warning("auditagent: could not reconcile a history item: %s", type(e).__name__)
    out.extend(translator.flush_finals())
    # tool calls whose batch never completed (cancelled, session closed mid-call)
    tools = translator.tools
    for call_id in tools.pending_ids():
        out.extend(tools.result(call_id, time.time(), force=True))
    return out


def _reconcile_item(tr: Translator, item: Any) -> list[Record]:
    kind = getattr(item, "type", None)
    if kind == "message":
        return tr.message(item, item.created_at, audio_out=None, text_out=None, live=False)
    if kind == "agent_handoff":
        return tr.handoff(item, item.created_at, live=False)
    if kind == "function_call":
        return tr.tools.history_call(item)
    if kind == "function_call_output":
        return tr.tools.history_output(item)
    if kind == "agent_config_update":
        if item.id in tr.seen_items:
            return []
        record = AgentConfigUpdated(
            at=utc(item.created_at),
            instructions=item.instructions,
            tools_added=list(item.tools_added or []),
            tools_removed=list(item.tools_removed or []),
            item_id=item.id,
            provenance="reconciled",
        )
        tr.seen_items.add(item.id)
        return [record]
    return []


def closed_record(t: float, *, reason: str, error: Any, usage: Any) -> Closed:
    inner = getattr(error, "error", None)
    return Closed(
        at=utc(t),
        reason=reason,
        error=None if error is None else (str(inner) if inner is not None else repr(error)),
        usage=usage_totals(usage),
    )


def usage_totals(usage: Any) -> list[UsageTotal]:
    out: list[UsageTotal] = []
    for u in getattr(usage, "model_usage", None) or []:
        try:
            d = u.model_dump()
        except Exception:
            continue
        values = {
            k: float(v)
            for k, v in d.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v
        }
        out.append(
            UsageTotal(
                type=str(d.get("type", "")),
                model=d.get("model"),
                provider=d.get("provider"),
                values=values,
            )
        )
    return out
