"""Moved to :mod:`auditagent.livekit._compat` (issue 11); this alias keeps old imports working."""

from __future__ import annotations

from .livekit._compat import *  # noqa: F403
from .livekit._compat import __all__ as __all__
