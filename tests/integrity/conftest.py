"""These tests count sessions, checkpoints or deletion records globally: each gets a database
of its own, and the suite's ``keyring``, ``engine``, ``client`` and ``cli_env`` follow it."""

from __future__ import annotations

import pytest

from auditagent.settings import Settings


@pytest.fixture
def settings(fresh_settings: Settings) -> Settings:
    return fresh_settings
