"""Purge benchmark: a retention run over 1M events in a fresh database.

    python bench/purge_bench.py [--events 1000000] [--sessions 1000] [--batch-size 10000]
        [--per-session] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

By default the sessions all started in one month whose partition exists, so the run drops the
month whole (issue 16: each session's deletion record, then one DROP; target <= 3 s for 1M
events). ``--per-session`` leaves that month uncreated: the rows wait in the default partition
and the run purges them session by session, the path every month not wholly expired takes.

Creates a scratch database, migrates it, inserts synthetic sealed-looking rows with SQL
generate_series (sessions closed a year ago, each ending with a ``closed`` record, so the 30-day
default expires them all), times ``auditagent.retention.run_retention`` — check each basis,
shred every key, delete in batches, mark purged, one chained and signed deletion record per
session, a signed checkpoint at the end — checks nothing is left, times the verification of the
signed proof (``retention_proof.verify_retention``), then drops the database.
Target: 1M events in <= 30 s on a 2-core box.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from auditagent import retention
from auditagent.integrity import deletion_basis
from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db, partitions


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--sessions", type=int, default=1_000)
    ap.add_argument("--batch-size", type=int, default=retention.DEFAULT_BATCH_SIZE)
    ap.add_argument("--per-session", action="store_true", help="no month partition: per session")
    ap.add_argument(
        "--admin-url",
        default=os.environ.get(
            "AUDITAGENT_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = ap.parse_args()
    per = max(1, args.events // args.sessions)
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    base = args.admin_url.rpartition("/")[0]
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db.sqlalchemy_url(f"{base}/{name}")
    tmp = tempfile.TemporaryDirectory()
    try:
        settings = Settings(
            database_url=url,
            data_dir=Path(tmp.name),
            retention_default_days=30,
            retention_floor_days=1,
        )
        keys = LocalKeyring.init(settings.resolved_keyring_path)
        db.upgrade(settings, url=url)
        # Mid-month, so every session of the run starts (and stays) in one month.
        month = partitions.Month.of(datetime.now(timezone.utc) - timedelta(days=400))
        started = month.start + timedelta(days=10)
        if not args.per_session:
            engine = db.make_engine(settings, url=url)
            with engine.begin() as sa_conn:
                for table in partitions.GROWING_TABLES:
                    partitions.ensure_months(sa_conn, table, [month])
            engine.dispose()
        t0 = time.perf_counter()
        with psycopg.connect(db.libpq_url(url)) as conn:
            conn.execute(
                "INSERT INTO sessions (id, tenant, started_at, ended_at, status, event_count, "
                "head_hash) SELECT md5('s' || i)::uuid, 'bench', %s, "
                "%s + interval '1 day', 'closed', %s, sha256(('h' || i)::bytea) "
                "FROM generate_series(1, %s) i",
                (started, started, per, args.sessions),
            )
            conn.execute(
                "INSERT INTO data_keys (session_id, key_id, tenant, master_key_id, wrapped) "
                "SELECT id, 'k', tenant, 'local:v1', sha256(id::text::bytea) FROM sessions"
            )
            conn.execute(
                "INSERT INTO events (session_id, seq, tenant, kind, at, key_id, nonce, "
                "ciphertext, prev_hash, hash, session_started_at) "
                "SELECT md5('s' || s)::uuid, q, 'bench', "
                "CASE WHEN q = %s THEN 'closed' ELSE 'user_utterance' END, "
                "%s + interval '1 hour', 'k', substr(sha256(q::text::bytea), 1, 12), "
                "sha256(s::text::bytea) || sha256(q::text::bytea) || sha256((s+q)::text::bytea), "
                "sha256(('p' || q)::bytea), sha256(('h' || q)::bytea), %s "
                "FROM generate_series(1, %s) s, generate_series(0, %s) q",
                (per - 1, started, started, args.sessions, per - 1),
            )
            conn.execute("ANALYZE")
        load_s = time.perf_counter() - t0
        total = per * args.sessions
        engine = db.make_engine(settings, url=url)
        try:
            t1 = time.perf_counter()
            report = retention.run_retention(
                engine,
                settings,
                key_provider=keys,
                batch_size=args.batch_size,
                requested_by="bench",
            )
            purge_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            proof = deletion_basis.verify_retention(engine, public_key=keys.signing_public_key())
            verify_s = time.perf_counter() - t2
            ok = proof.ok
        finally:
            engine.dispose()
        with psycopg.connect(db.libpq_url(url)) as conn:
            left = conn.execute("SELECT count(*) FROM events").fetchone()
        assert left is not None
        print(
            f"purge: {total} events in {args.sessions} sessions loaded in {load_s:.1f} s; "
            f"retention run {purge_s:.1f} s ({total / purge_s:,.0f} events/s, batch "
            f"{args.batch_size}); deleted {report.sessions_deleted} sessions / "
            f"{report.events_deleted} events, {left[0]} left; months dropped whole "
            f"{report.months_dropped or 'none'}; {len(report.deletion_records)} deletion "
            f"records; signed proof "
            f"{'valid' if ok else 'BROKEN'}, verified in {verify_s:.2f} s; cpus={os.cpu_count()}"
        )
        return 0 if report.ok and left[0] == 0 and ok else 1
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
