"""Moved to `auditagent_demo.server`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import server as _moved

sys.modules[__name__] = _moved
