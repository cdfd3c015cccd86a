"""The redaction step between translation and sealing: every text a record carries.

One ``RedactionStep`` per recorded conversation, fed the records in the order the writer seals
them, so the agent's question reaches it before the caller's answer. It never raises: a record
it could not check is sealed with its text removed, after a ``redaction_failed`` notice (fail
closed: the plaintext is never the fallback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..records import Notice, Record
from .redactor import Redacted, Redactor, add_counts
from .screen import native_quiet
from .structured import KEY_HINTS, redact_json_text, redact_value

log = logging.getLogger("auditagent.redaction")

UNCHECKED = "[text removed: redaction failed]"

# record kind -> its free-text fields (str | None)
_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "user_utterance": ("text",),
    "agent_utterance": ("text", "generated_text"),
    "tool_call": ("arguments",),
    "tool_result": ("output", "exception", "model_told"),
    "agent_config_updated": ("instructions",),
    "error": ("message",),
    "notice": ("message",),
    "closed": ("error",),
}
_JSON_FIELDS = frozenset({"arguments", "output", "model_told"})
_DIALOG = frozenset({"user_utterance", "agent_utterance"})
# what most records are: settled by one C call per text when nothing in them can matter
_QUIET_KINDS = {
    kind: tuple((name, name in _JSON_FIELDS) for name in _TEXT_FIELDS[kind])
    for kind in ("user_utterance", "agent_utterance", "tool_call", "tool_result")
}


class RedactionStep:
    """Redacts the records of one conversation before they are sealed."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.conversation = redactor.conversation()
        self.enabled = redactor.enabled
        p = redactor.policy
        # The fast path, for a policy that looks for card data only (pci and its like): a
        # record whose texts the C screen finds quiet is sealed as it is, with no dialog
        # state to update (no question open for an utterance, none asked).
        card_only = not (
            p.national_ids or p.phones or p.emails or p.ibans or p.dates_of_birth or p.rules
        )
        self._quiet = native_quiet(KEY_HINTS) if self.enabled and card_only and not p.keys else None
        self._mask = redactor.quiet_mask

    def __call__(self, record: Record) -> list[Record]:
        if not self.enabled or record.kind not in _TEXT_FIELDS:
            return [record]
        quiet = self._quiet
        if quiet is not None:
            fields = _QUIET_KINDS.get(record.kind)
            if fields is not None and self._all_quiet(quiet, record, fields):
                return [record]
        try:
            return [self._redact(record)]
        except Exception as exc:  # fail closed: a notice, and the record without its text
            log.error("redaction failed on a %s record: %s", record.kind, type(exc).__name__)
            notice = Notice(
                at=record.at,
                code="redaction_failed",
                message=f"a {record.kind} record could not be checked; its text was not kept",
                details={"kind": record.kind, "error": type(exc).__name__},
            )
            stripped = _stripped(record)
            return [notice] if stripped is None else [notice, stripped]

    def _all_quiet(
        self, quiet: Callable[[str, int, bool], bool], record: Record, fields: Any
    ) -> bool:
        # an utterance is read against the questions still open (tool texts are not)
        conv = self.conversation
        if record.kind in _DIALOG and conv.asking and conv.open_at(record.at.timestamp()):
            return False
        mask = self._mask
        for name, hints in fields:
            value = getattr(record, name)
            if value and not quiet(value, mask, hints):
                return False
        return True

    def _redact(self, record: Record) -> Record:
        kind = record.kind
        conv = self.conversation
        counts: dict[str, int] = {}
        update: dict[str, Any] = {}
        if kind == "agent_utterance":
            self._agent(record, record.at.timestamp(), update, counts)
        else:
            for name in _TEXT_FIELDS[kind]:
                value = getattr(record, name)
                if not value:
                    continue
                if kind == "user_utterance":
                    red = conv.user(value, at=record.at.timestamp())
                elif name in _JSON_FIELDS:
                    red = redact_json_text(self.redactor, value)
                else:
                    red = self.redactor.text(value)
                if red.removed:
                    update[name] = red.text
                    add_counts(counts, red.removed)
        if kind == "notice":
            details = record.details  # type: ignore[union-attr]
            if details:
                new, found = redact_value(self.redactor, details)
                if found:
                    update["details"] = new
                    add_counts(counts, found)
        if not counts:
            return record
        update["redacted"] = add_counts(dict(record.redacted), counts)
        return record.model_copy(update=update)

    def _agent(
        self, record: Any, at: float, update: dict[str, Any], counts: dict[str, int]
    ) -> None:
        text: str = record.text
        gen: str | None = record.generated_text
        outs: list[tuple[str, Redacted]] = []
        if gen and gen.startswith(text):
            # What was heard is a prefix of what was generated: when the generated text holds
            # nothing, neither does the heard part, which is then not scanned again.
            g = self.conversation.agent(gen, at=at)
            outs.append(("generated_text", g))
            if g.removed:
                outs.append(("text", self.redactor.text(text)))
        else:
            outs.append(("text", self.conversation.agent(text, at=at)))
            if gen:
                outs.append(("generated_text", self.redactor.text(gen)))
        for name, red in outs:
            if red.removed:
                update[name] = red.text
                add_counts(counts, red.removed)


def _stripped(record: Record) -> Record | None:
    try:
        update: dict[str, Any] = {
            name: UNCHECKED for name in _TEXT_FIELDS[record.kind] if getattr(record, name)
        }
        if record.kind == "notice":
            update["details"] = {}
        update["redacted"] = {"unchecked": 1}
        return record.model_copy(update=update)
    except Exception:
        return None
