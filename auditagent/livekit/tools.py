"""Tool calls and their results, from two events and from history.

A call is seen in ``tool_execution_updated`` (started/ended, with the raw exception text) and
in ``function_tools_executed`` (the output the model was told); its result record is built once
both have arrived, or at close from what is known (``force``). Each call and each result is
recorded once, whichever source delivered it first.
"""

from __future__ import annotations

from typing import Any

from ..records import Provenance, Record, ToolCall, ToolResult
from .fields import utc


class _PendingTool:
    __slots__ = ("call", "ended_at", "message", "output", "started_at", "status")

    def __init__(self) -> None:
        self.call: Any = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.message: str | None = None
        self.status: str | None = None
        self.output: Any = None


class ToolLedger:
    """What is known of each tool call of one session, and what is recorded of it."""

    def __init__(self) -> None:
        self._tools: dict[str, _PendingTool] = {}
        self.seen_calls: set[str] = set()
        self.seen_results: set[str] = set()

    def _tool(self, call_id: str) -> _PendingTool:
        p = self._tools.get(call_id)
        if p is None:
            p = self._tools[call_id] = _PendingTool()
        return p

    def pending_ids(self) -> list[str]:
        return list(self._tools)

    # --- live events

    def on_execution_updated(self, ev: Any, t: float) -> list[Record]:
        u = ev.update
        if u.type == "tool_call_started":
            p = self._tool(u.function_call.call_id)
            p.call, p.started_at = u.function_call, t
            return self.call_record(u.function_call, t)
        if u.type == "tool_call_ended":
            p = self._tool(u.call_id)
            p.ended_at, p.message, p.status = t, u.message, u.status
            return self.result(u.call_id, t)
        return []

    def on_tools_executed(self, ev: Any, t: float) -> list[Record]:
        out: list[Record] = []
        for call, output in ev.zipped():
            out.extend(self.call_record(call, t))
            p = self._tool(call.call_id)
            p.call = p.call or call
            p.output = output
            out.extend(self.result(call.call_id, t))
        return out

    # --- history items (reconcile)

    def history_call(self, item: Any) -> list[Record]:
        if item.call_id in self.seen_calls:
            return []
        p = self._tool(item.call_id)
        p.call = p.call or item
        return self.call_record(item, item.created_at, provenance="reconciled")

    def history_output(self, item: Any) -> list[Record]:
        if item.call_id in self.seen_results:
            return []
        p = self._tool(item.call_id)
        p.output = item
        return self.result(item.call_id, item.created_at, force=True, provenance="reconciled")

    # --- records

    def call_record(self, call: Any, t: float, *, provenance: Provenance = "live") -> list[Record]:
        if call.call_id in self.seen_calls:
            return []
        record = ToolCall(
            at=utc(t),
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
            group_id=call.group_id,
            item_id=call.id,
            provenance=provenance,
        )
        self.seen_calls.add(call.call_id)
        return [record]

    def result(
        self, call_id: str, t: float, *, force: bool = False, provenance: Provenance = "live"
    ) -> list[Record]:
        p = self._tools.get(call_id)
        if p is None or call_id in self.seen_results:
            return []
        if not force and (p.output is None or p.status is None):
            return []
        o = p.output
        errored = p.status == "error" or bool(getattr(o, "is_error", False))
        duration = (
            p.ended_at - p.started_at
            if p.ended_at is not None and p.started_at is not None
            else None
        )
        name = getattr(p.call, "name", None) or getattr(o, "name", "") or ""
        record = ToolResult(
            at=utc(p.ended_at or t),
            call_id=call_id,
            name=name,
            output=None if p.status == "error" else p.message,
            is_error=errored,
            status=p.status,
            exception=p.message if p.status == "error" else None,
            model_told=getattr(o, "output", None),
            duration_s=duration,
            item_id=getattr(o, "id", None),
            provenance=provenance,
        )
        self.seen_results.add(call_id)
        return [record]
