"""Fixtures of the reader's unit tests (see ``support``)."""

from __future__ import annotations

import pytest

from tests.support.sealed import Sealed, conversation, seal


@pytest.fixture
def sealed() -> Sealed:
    return seal(conversation())
