"""Search end to end over real recorded sessions: index, candidates, decrypt, confirm."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from auditagent.keys import LocalKeyring
from auditagent.search import parse_query, search
from auditagent.search.reindex import reindex
from auditagent.settings import Settings
from auditagent.store import search_rows
from tests.search.support import record
from tests.support.helpers import assert_no_plaintext


def _ids(engine: Engine, kr: LocalKeyring, tenant: str, q: str, **kw: object) -> list[uuid.UUID]:
    with engine.connect() as conn:
        page = search(conn, kr, tenant=tenant, query=parse_query(q), **kw)  # type: ignore[arg-type]
    return [item.session.id for item in page.items]


def test_search_finds_confirms_and_forgets(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    other = f"{tenant}-other"
    a = record(
        settings,
        keyring,
        tenant=tenant,
        lines=[
            ("user", "The zebrafinch ate my card"),
            ("agent", "That rate is guaranteed."),
            ("tool", "transfer_funds"),
        ],
    )
    b = record(settings, keyring, tenant=tenant, lines=[("user", "just a normal call")])
    c = record(settings, keyring, tenant=other, lines=[("user", "zebrafinch here too")])
    # The recorder's writer indexed them as it stored them: nothing for a reindex to do.
    for t in (tenant, other):
        assert reindex(engine, keyring, tenant=t).indexed == 0

    assert _ids(engine, keyring, tenant, "Zebrafinch") == [a]
    assert _ids(engine, keyring, other, "zebrafinch") == [c]
    assert _ids(engine, keyring, tenant, "zebrafinch", role="agent") == []
    assert _ids(engine, keyring, tenant, '"rate is guaranteed"', role="agent") == [a]
    assert _ids(engine, keyring, tenant, '"guaranteed rate"') == []
    assert _ids(engine, keyring, tenant, "transfer_funds declined", role="tool") == [a]
    assert _ids(engine, keyring, tenant, "normal call") == [b]

    with engine.connect() as conn:
        page = search(conn, keyring, tenant=tenant, query=parse_query("zebrafinch"))
    (hit,) = page.items[0].hits
    assert hit.role == "user" and hit.seq == 1
    assert hit.snippet[hit.match_start : hit.match_end] == "zebrafinch"

    assert_no_plaintext(settings.database_url, None, "zebrafinch", "guaranteed")

    with engine.begin() as conn:
        assert search_rows.delete_for_sessions(conn, [a]) > 0
    assert _ids(engine, keyring, tenant, "zebrafinch") == []


def test_a_rotated_key_searches_old_rows_until_the_reindex_moves_them(
    settings: Settings, engine: Engine, keyring: LocalKeyring, tenant: str
) -> None:
    sid = record(settings, keyring, tenant=tenant, lines=[("user", "kestrel refund")])
    new_id = keyring.rotate()
    assert _ids(engine, keyring, tenant, "kestrel") == [sid]
    progress: list[tuple[int, int]] = []
    moved = reindex(engine, keyring, tenant=tenant, progress=lambda d, t: progress.append((d, t)))
    assert moved.key_id == new_id and moved.indexed == 1
    assert progress[0] == (0, 1) and progress[-1] == (1, 1)
    assert _ids(engine, keyring, tenant, "kestrel") == [sid]
    # Nothing left to do: a rerun (the resume after an interruption) finds no work.
    assert reindex(engine, keyring, tenant=tenant).indexed == 0
    with engine.connect() as conn:
        keys = (
            conn.exec_driver_sql(
                "SELECT DISTINCT key_id FROM search_index WHERE session_id = %(s)s", {"s": sid}
            )
            .scalars()
            .all()
        )
    assert keys == [new_id]
