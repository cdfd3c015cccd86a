"""The public surface is a contract: pin it."""

from __future__ import annotations

import inspect

import pytest

import auditagent

# The public API, exactly: adding or removing a name is a decision, made here.
EXPECTED = [
    "AuditRecorder",
    "AuditagentError",
    "IntegrityError",
    "PauseRule",
    "RedactionPolicy",
    "SessionRecording",
    "Settings",
    "TranscriptionDisabled",
    "protect_logs",
    "record_session",
]


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(auditagent.__all__) == EXPECTED
    assert len(auditagent.__all__) == len(set(auditagent.__all__))


def test_every_exported_name_resolves_to_our_own_object() -> None:
    for name in EXPECTED:
        value = getattr(auditagent, name)
        assert value is not None, name
        # defined by auditagent, not a third-party object passed through
        assert value.__module__.split(".")[0] == "auditagent", (name, value.__module__)
        assert value.__name__ == name
    namespace: dict[str, object] = {}
    exec("from auditagent import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPECTED


def test_nothing_public_that_is_not_exported() -> None:
    """As httpx pins it: every public, non-module name the package holds is in ``__all__``
    (resolving the lazy names first, so they are counted too)."""
    for name in EXPECTED:
        getattr(auditagent, name)
    public = sorted(
        name
        for name, value in vars(auditagent).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        # `from __future__ import annotations` binds a name every module has
        and name != "annotations"
    )
    assert public == EXPECTED
    with pytest.raises(AttributeError):
        auditagent.NotAnExport  # noqa: B018
    assert isinstance(auditagent.__version__, str)


def test_review_service_exports_create_app_only() -> None:
    import auditagent_api

    assert auditagent_api.__all__ == ["create_app"]
    assert callable(auditagent_api.create_app)
    public = [
        n
        for n, v in vars(auditagent_api).items()
        if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"
    ]
    assert public == ["create_app"]


def test_recorder_api_shape() -> None:
    rec = auditagent.AuditRecorder
    assert callable(rec.from_env)
    for method in ("start", "flush", "aclose", "attach_job", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(rec, method)), method
    params = inspect.signature(rec.attach).parameters
    assert params["tenant"].kind is inspect.Parameter.KEYWORD_ONLY
    assert {"participant", "labels"} <= set(params)
    assert inspect.iscoroutinefunction(auditagent.record_session)
