"""Per-row cost of the append-only guard on a purge: migration 0016's guard against 0018's,
side by side in one database.

    python bench/purge_guard_bench.py [--rows 50000] [--rounds 4]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database at head, loads ``rounds * 2`` sessions of ``rows`` events each into
``events_default`` (as ``purge_bench.py --per-session`` does), then deletes them one session a
transaction the way the purge path does (``allow_purge = 'on'``, the partition key given),
alternating 0016's guard (each deleted row looks up its partition root) and 0018's (a trigger
argument), so load drifts on a shared box hit both alike. Drops the database.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
import uuid
from pathlib import Path

import psycopg

from auditagent.settings import Settings
from auditagent.store import db

STARTED = "2020-01-15 00:00:00+00"


def _migration() -> object:
    path = db.migrations_dir() / "versions" / "20261126_0018_partition_audio_search.py"
    spec = importlib.util.spec_from_file_location("m0018", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _use(conn: psycopg.Connection[tuple[object, ...]], function: str, argument: str) -> None:
    conn.execute(function)
    conn.execute("DROP TRIGGER events_append_only ON events")
    conn.execute(
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
        f"FOR EACH ROW EXECUTE FUNCTION auditagent_append_only({argument})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument(
        "--admin-url",
        default=os.environ.get(
            "AUDITAGENT_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = ap.parse_args()
    m = _migration()
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    base = args.admin_url.rpartition("/")[0]
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = db.sqlalchemy_url(f"{base}/{name}")
        db.upgrade(Settings(database_url=url, data_dir=Path("/nonexistent")), url=url)
        times: dict[str, list[float]] = {"0016": [], "0018": []}
        with psycopg.connect(db.libpq_url(url), autocommit=True) as conn:
            sids = [uuid.uuid4() for _ in range(2 * args.rounds)]
            for sid in sids:
                conn.execute(
                    "INSERT INTO events (session_id, seq, tenant, kind, at, key_id, nonce, "
                    "ciphertext, prev_hash, hash, session_started_at) SELECT %s, g, 't', 'note', "
                    "now(), 'k', '\\x00', '\\x00', '\\x00', '\\x00', %s "
                    "FROM generate_series(0, %s) g",
                    (sid, STARTED, args.rows - 1),
                )
            conn.execute("VACUUM ANALYZE events_default")
            for i, sid in enumerate(sids):
                which = ("0016", "0018")[i % 2]
                if which == "0016":
                    _use(conn, m.APPEND_ONLY_GUARD_0016, "")  # type: ignore[attr-defined]
                else:
                    _use(conn, m.APPEND_ONLY_GUARD, "'purgeable'")  # type: ignore[attr-defined]
                with conn.transaction():
                    conn.execute("SET LOCAL auditagent.allow_purge = 'on'")
                    t = time.perf_counter()
                    cur = conn.execute(
                        "DELETE FROM events WHERE session_id = %s AND session_started_at = %s",
                        (sid, STARTED),
                    )
                    times[which].append(time.perf_counter() - t)
                    assert cur.rowcount == args.rows
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"guard: delete {args.rows} events a session, {args.rounds} rounds alternating; "
            f"0016 guard median {med['0016']:.3f} s ({1e6 * med['0016'] / args.rows:.1f} us/row), "
            f"0018 guard median {med['0018']:.3f} s ({1e6 * med['0018'] / args.rows:.1f} us/row); "
            f"ratio {med['0016'] / med['0018']:.2f}x; load {os.getloadavg()[0]:.1f}"
        )
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
