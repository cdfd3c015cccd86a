"""Property-based run over the OpenAPI document: no 5xx, no undocumented status, content type,
header or body anywhere, with an admin token against the real database.

The operation list comes from the app itself (building it needs no database); each operation is
then fuzzed against an app wired to the test database, positive and negative data both.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from auditagent_api import create_app
from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from tests.support.api import make_token, record_conversation


def _operations() -> list[tuple[str, str]]:
    doc = create_app(Settings(database_url="postgresql://unused@127.0.0.1/none")).openapi()
    return [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
@pytest.mark.parametrize(("method", "path"), _operations())
def test_openapi_conformance(
    settings: Settings,
    engine: Engine,
    keyring: LocalKeyring,
    tenant: str,
    method: str,
    path: str,
    mode: schemathesis.GenerationMode,
) -> None:
    # One real session so list/analytics answers carry data, not only empty pages.
    record_conversation(settings, keyring, tenant=tenant)
    token = make_token(engine, "admin", None, name="schemathesis")
    app = create_app(settings, engine=engine, key_provider=keyring)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema[path][method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        headers = dict(case.headers or {})
        # Negative cases may carry deliberately broken credentials (and then expect a 401);
        # everything else is sent with a valid admin token.
        if not schema.is_security_param_negated(case):
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        case.call_and_validate()

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pytest.skip(f"{method} {path} has no parameter to make invalid")
