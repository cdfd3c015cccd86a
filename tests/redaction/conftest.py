"""Every text-level redaction test runs twice: with the C screen and number reader
(auditagent/redaction/_screen.c, _spoken.c), and with the Python code they fall back to, which
must give the same results."""

from __future__ import annotations

import pytest

from auditagent.redaction import Redactor, spoken
from auditagent.redaction.screen import NATIVE_ENV, native_enabled

# tests through a database, the recorder and audio: once, with whichever screen is built
_ONCE = ("tests.redaction.test_redaction_sessions", "tests.redaction.test_native_screen")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ not in _ONCE:
        metafunc.parametrize("screen_path", ["native", "python"], indirect=True)


@pytest.fixture(autouse=True)
def screen_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    path: str = getattr(request, "param", "default")
    if path == "python":
        monkeypatch.setenv(NATIVE_ENV, "0")
        monkeypatch.setattr(spoken, "_native_runs", None)
        # redactors a test module made at import, before the switch
        for value in vars(request.module).values():
            if isinstance(value, Redactor):
                monkeypatch.setattr(value, "_native", None)
    elif path == "native" and not native_enabled():
        pytest.skip("the C screen is not built here: the python run covers these")
    return path
