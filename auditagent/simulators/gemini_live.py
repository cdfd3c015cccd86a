"""Moved to `auditagent_demo.gemini_live`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import gemini_live as _moved

sys.modules[__name__] = _moved
