"""auditagent: compliance transcript and audit recorder for LiveKit voice agents."""

from __future__ import annotations

from .errors import AuditagentError
from .settings import Settings

__all__ = ["AuditagentError", "Settings"]
__version__ = "0.1.0"
