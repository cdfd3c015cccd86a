"""Moved to `auditagent_demo.cartesia`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import cartesia as _moved

sys.modules[__name__] = _moved
