"""Which text of which record is searchable, and whose words they are."""

from __future__ import annotations

from typing import Literal

from auditagent.records import AgentUtterance, Record, ToolCall, ToolResult, UserUtterance

__all__ = [
    "ROLES",
    "ROLE_CODES",
    "SEARCHABLE_KINDS",
    "Role",
    "kinds_of_role",
    "record_texts",
    "role_of_kind",
]

Role = Literal["user", "agent", "tool"]
ROLES: tuple[Role, ...] = ("user", "agent", "tool")
ROLE_CODES: dict[Role, int] = {"user": 1, "agent": 2, "tool": 3}
"""How a role is stored in ``search_index.role`` (a smallint: one row per word and role)."""

_KIND_ROLE: dict[str, Role] = {
    "user_utterance": "user",
    "agent_utterance": "agent",
    "tool_call": "tool",
    "tool_result": "tool",
}
SEARCHABLE_KINDS = frozenset(_KIND_ROLE)


def role_of_kind(kind: str) -> Role | None:
    return _KIND_ROLE.get(kind)


def kinds_of_role(role: Role) -> list[str]:
    return sorted(k for k, r in _KIND_ROLE.items() if r == role)


def record_texts(record: Record) -> list[str]:
    """The searchable fields of one record (empty for records without conversation text).

    A tool call's name and raw arguments and a tool result's name, output and error are all
    the tool's words: "where did transfer_funds fail" is a search among them."""
    if isinstance(record, UserUtterance):
        return [record.text]
    if isinstance(record, AgentUtterance):
        if record.generated_text and record.generated_text != record.text:
            return [record.text, record.generated_text]
        return [record.text]
    if isinstance(record, ToolCall):
        return [record.name, record.arguments]
    if isinstance(record, ToolResult):
        fields = [record.name, record.output, record.exception, record.model_told]
        return [f for f in fields if f]
    return []
