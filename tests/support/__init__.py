"""What the tests share that is not a fixture: helpers, fakes, simulators of failure.

Fixtures live in ``conftest.py`` files (tests/conftest.py for the whole suite); the modules here
are imported by name (``from tests.support.api import make_token``).
"""

from __future__ import annotations

from pathlib import Path

# the checkout: subprocesses that import ``tests.support`` get it as PYTHONPATH
ROOT = Path(__file__).resolve().parents[2]
