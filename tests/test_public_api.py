"""The public surface is a contract: pin it."""

from __future__ import annotations

import inspect

import auditagent


def test_exported_names() -> None:
    assert sorted(auditagent.__all__) == [
        "AuditRecorder",
        "AuditagentError",
        "IntegrityError",
        "SessionRecording",
        "Settings",
        "TranscriptionDisabled",
        "protect_logs",
        "record_session",
    ]
    for name in auditagent.__all__:
        assert getattr(auditagent, name) is not None


def test_recorder_api_shape() -> None:
    rec = auditagent.AuditRecorder
    assert callable(rec.from_env)
    for method in ("start", "flush", "aclose", "attach_job", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(rec, method)), method
    params = inspect.signature(rec.attach).parameters
    assert params["tenant"].kind is inspect.Parameter.KEYWORD_ONLY
    assert {"participant", "labels"} <= set(params)
    assert inspect.iscoroutinefunction(auditagent.record_session)
