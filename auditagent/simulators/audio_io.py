"""Moved to `auditagent_demo.audio_io`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import audio_io as _moved

sys.modules[__name__] = _moved
