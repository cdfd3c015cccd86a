"""Keep transcript text out of logs.

LiveKit Agents (1.8.x) logs conversation content at DEBUG/WARNING through ordinary loggers
(``livekit.agents``, ``livekit.plugins.<name>``) and puts the content in ``extra`` attributes
whose name has a ``pii`` segment: ``lk.pii.text`` (every chat item), ``lk.pii.user_transcript``,
``lk.pii.user_input``, ``lk.pii.transcript``, ``lk.pii.arguments`` and ``lk.pii.output`` (tool
calls), ``lk.pii.error``, ``lk.pii.data``/``lk.pii.content`` (provider payloads). There is no
``lk.pii`` *logger* in 1.8.9; the marker is the attribute name, the same convention LiveKit's
own OpenTelemetry PII filter (``livekit.agents.telemetry.pii.is_pii_attribute``) uses. A JSON
or console formatter then prints those attributes next to the message — a second, unencrypted
copy of the transcript in whatever collects the logs.

``TranscriptRedactionFilter`` replaces such attributes with ``[redacted]`` in place, so every
handler after it sees the redacted record. For records from LiveKit's loggers it also redacts a
few content-bearing attribute names without the marker and the *message* of an attached
exception (a tool that raises ``ValueError(f"no account {number}")`` is logged with its
traceback), keeping the exception type and stack. Records from a logger named ``lk.pii`` or
below it are dropped outright, should a future version log content that way.

With a redaction policy (``pci`` by default, as for records; see docs/redaction.md) the filter
also applies the recorder's redaction rules to every record's formatted message and to every
other text attribute, on any logger it sits on: a card number, security code or expiry in a
log line is replaced by the same placeholders the sealed records carry.

Install once per process, after logging is configured and plugins are imported (LiveKit runs
each job in its own process: call it from ``prewarm`` or the entrypoint)::

    from auditagent.logfilter import protect_logs
    protect_logs()

``protect_logs`` also asks LiveKit to strip PII from OpenTelemetry spans (see
:func:`disable_trace_pii`).
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .redaction import PolicyLike, Redactor

REDACTED = "[redacted]"

PII_LOGGER = "lk.pii"
"""Records from this logger, or any below it, are dropped."""

LIVEKIT_PREFIXES: tuple[str, ...] = ("livekit", "lk")
"""Loggers whose records also get generic-name and exception redaction."""

DEFAULT_LOGGERS: tuple[str, ...] = ("livekit", "livekit.agents")
"""Named loggers the filter is attached to (plus every existing ``livekit.*`` logger)."""

CONTENT_KEYS: frozenset[str] = frozenset(
    {
        "text",
        "transcript",
        "user_transcript",
        "interim_transcript",
        "user_input",
        "arguments",
        "output",
        "content",
        "function_calls",
        "chat_ctx",
        "instructions",
        "data",
    }
)
"""Unmarked attribute names that carry content when a LiveKit logger sets them."""

# attributes every LogRecord has; never touched
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _is_pii_key(key: str) -> bool:
    return "pii" in key.split(".")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class TranscriptRedactionFilter(logging.Filter):
    """Redacts conversation content from log records; drops ``lk.pii.*`` logger records."""

    def __init__(
        self,
        *,
        content_keys: Iterable[str] = CONTENT_KEYS,
        redact_exceptions: bool = True,
        redaction: PolicyLike = "pci",
    ) -> None:
        super().__init__()
        self.content_keys = frozenset(content_keys)
        self.redact_exceptions = redact_exceptions
        from .redaction import Redactor

        redactor = Redactor(redaction)
        self.redactor: Redactor | None = redactor if redactor.enabled else None

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self._filter(record)
        except Exception:
            # a filter that raises loses the record and spams stderr; failing closed is safer
            return False

    def _filter(self, record: logging.LogRecord) -> bool:
        name = record.name or ""
        if _under(name, PII_LOGGER):
            return False
        livekit = any(_under(name, p) for p in LIVEKIT_PREFIXES)
        d = record.__dict__
        for key in list(d):
            if key in _STANDARD:
                continue
            if _is_pii_key(key) or (livekit and key in self.content_keys):
                d[key] = REDACTED
        if livekit and self.redact_exceptions and record.exc_info and record.exc_info[1]:
            record.exc_text = _redacted_traceback(record.exc_info)
            # formatters (LiveKit's JsonFormatter too) prefer exc_info when it is set
            record.exc_info = None
        if self.redactor is not None:
            self._apply_rules(record, self.redactor)
        return True

    @staticmethod
    def _apply_rules(record: logging.LogRecord, redactor: Redactor) -> None:
        message = record.getMessage() if record.args else str(record.msg)
        red = redactor.text(message)
        if red.removed:
            record.msg, record.args = red.text, None
        d = record.__dict__
        for key in list(d):
            v = d[key]
            if key not in _STANDARD and isinstance(v, str) and v and v != REDACTED:
                out = redactor.text(v)
                if out.removed:
                    d[key] = out.text
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text).text


def _redacted_traceback(exc_info: Any) -> str:
    etype, _value, tb = exc_info
    frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
    kind = f"{etype.__module__}.{etype.__qualname__}" if etype is not None else "Exception"
    return f"Traceback (most recent call last):\n{frames}{kind}: {REDACTED}"


_installed: list[tuple[TranscriptRedactionFilter, list[logging.Filterer]]] = []
_default: list[TranscriptRedactionFilter] = []


def _default_filter(redaction: PolicyLike = None) -> TranscriptRedactionFilter:
    # one shared instance per policy, so installing twice (prewarm and entrypoint) does not
    # stack filters
    if redaction is None:
        from .settings import Settings

        redaction = Settings().redaction
    for f in _default:
        if f.redactor is None and redaction == "off":
            return f
        if f.redactor is not None and (
            f.redactor.policy is redaction or f.redactor.policy.name == redaction
        ):
            return f
    f = TranscriptRedactionFilter(redaction=redaction)
    _default.append(f)
    return f


def install_log_filter(
    logger_names: Iterable[str] = DEFAULT_LOGGERS,
    *,
    root_handlers: bool = True,
    log_filter: TranscriptRedactionFilter | None = None,
    redaction: PolicyLike = None,
) -> TranscriptRedactionFilter:
    """Attach the filter where LiveKit's records pass; returns it (for :func:`remove_log_filter`).

    A logger's own filters only see records logged on that very logger, not on its children,
    so the filter goes on each named logger, on every ``livekit.*`` logger that exists now
    (plugins create theirs at import), and on the root logger's handlers, which catch records
    from any logger that propagates. Idempotent per target.
    """
    f = log_filter or _default_filter(redaction)
    names = set(logger_names)
    names.update(
        n
        for n in list(logging.root.manager.loggerDict)
        if any(_under(n, p) for p in LIVEKIT_PREFIXES)
    )
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in sorted(names)]
    if root_handlers:
        targets.extend(logging.getLogger().handlers)
    for t in targets:
        if f not in t.filters:
            t.addFilter(f)
    _installed.append((f, targets))
    return f


def remove_log_filter(f: TranscriptRedactionFilter) -> None:
    """Detach a filter installed by :func:`install_log_filter`."""
    for g, targets in list(_installed):
        if g is f:
            for t in targets:
                t.removeFilter(f)
            _installed.remove((g, targets))


def disable_trace_pii(tracer_provider: Any = None) -> None:
    """Ask LiveKit to strip conversation content from OpenTelemetry spans.

    LiveKit's switch is ``telemetry.set_tracer_provider(provider, allow_pii=False)``, which
    needs an SDK tracer provider; for a provider LiveKit adopts by itself it reads
    ``LIVEKIT_TELEMETRY_ALLOW_PII``. This sets that variable to ``0`` (inherited by job
    processes started afterwards) and, given a provider, registers it with ``allow_pii=False``.
    LiveKit installs its PII processor at most once per provider, so call this before the
    provider is first handed to LiveKit. Exports to LiveKit Cloud follow the project's
    dashboard setting instead. Without any provider, spans are not recorded at all.
    """
    os.environ["LIVEKIT_TELEMETRY_ALLOW_PII"] = "0"
    if tracer_provider is not None:
        from livekit.agents import telemetry

        telemetry.set_tracer_provider(tracer_provider, allow_pii=False)


def protect_logs(
    logger_names: Iterable[str] = DEFAULT_LOGGERS,
    *,
    tracer_provider: Any = None,
    redaction: PolicyLike = None,
) -> TranscriptRedactionFilter:
    """Install the log filter and turn off PII in LiveKit's traces, in one call.

    ``redaction`` (default: ``AUDITAGENT_REDACTION``, else ``pci``) is the policy whose rules
    are applied to log messages, as the recorder applies them to records."""
    f = install_log_filter(logger_names, redaction=redaction)
    disable_trace_pii(tracer_provider)
    return f
