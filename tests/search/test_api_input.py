"""`GET /v1/search` refuses bad input with a 422 naming the rule, never a 5xx."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.api import auth, make_token


@pytest.mark.parametrize(
    ("q", "rule"),
    [
        ("", "query-empty"),
        ("the and of it", "query-only-common-words"),
        ("chargeback " * 1000, "query-too-long"),
        ("charge*", "query-wildcard"),
        ("'; DROP TABLE events; --", "query-syntax"),
        ("x' OR 1=1", "query-syntax"),
    ],
)
def test_bad_queries_are_422_naming_the_rule(
    client: TestClient,
    engine: Engine,
    q: str,
    rule: str,
) -> None:
    res = client.get(
        "/v1/search", params={"q": q}, headers=auth(make_token(engine, "auditor", "t"))
    )
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["type"].endswith("/" + rule) and body["detail"]
