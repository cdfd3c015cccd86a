"""Moved to `auditagent_demo.openai`; this alias keeps the old import path working."""

from __future__ import annotations

import sys

from auditagent_demo import openai as _moved

sys.modules[__name__] = _moved
