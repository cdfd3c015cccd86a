"""Moved to `auditagent_demo.script`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import script as _moved

sys.modules[__name__] = _moved
