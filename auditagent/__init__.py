"""auditagent: compliance transcript and audit recorder for LiveKit voice agents.

recorder = AuditRecorder.from_env()
await recorder.start()
rec = recorder.attach(session, tenant="acme", participant="+15551234567")
"""

from __future__ import annotations

# private aliases: the package namespace holds the public API and nothing else
import typing as _typing
from typing import Any as _Any

from .errors import AuditagentError, IntegrityError, TranscriptionDisabled
from .settings import Settings

if _typing.TYPE_CHECKING:
    from .logfilter import protect_logs
    from .recorder import AuditRecorder, SessionRecording, record_session
    from .recorder.pauses import PauseRule
    from .redaction.policy import RedactionPolicy

__all__ = [
    "AuditRecorder",
    "AuditagentError",
    "IntegrityError",
    "PauseRule",
    "RedactionPolicy",
    "SessionRecording",
    "Settings",
    "TranscriptionDisabled",
    "protect_logs",
    "record_session",
]
__version__ = "0.1.0"

# The recorder pulls in livekit-agents; the CLI and the review service do not need it, so it
# is imported on first use rather than with the package.
_LAZY = {
    "AuditRecorder": "recorder",
    "SessionRecording": "recorder",
    "record_session": "recorder",
    "protect_logs": "logfilter",
    "PauseRule": "recorder.pauses",
    "RedactionPolicy": "redaction.policy",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditagent' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
