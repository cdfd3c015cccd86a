"""The switch for the optional C modules of auditagent/redaction (_screen.c, _spoken.c)."""

from __future__ import annotations

import os

NATIVE_ENV = "AUDITAGENT_REDACTION_NATIVE"
"""``0`` (or ``off``/``false``/``no``): read texts in Python even when the C modules are built.
The screen reads it when a ``Redactor`` is made, the number reader when
``auditagent.redaction`` is imported."""


def wanted() -> bool:
    """Whether the environment leaves the C modules on."""
    return os.environ.get(NATIVE_ENV, "").strip().lower() not in ("0", "off", "false", "no")
