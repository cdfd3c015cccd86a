"""Moved to `auditagent_demo.openai_realtime`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import openai_realtime as _moved

sys.modules[__name__] = _moved
