"""Fleet load test: N recorder processes (one per simulated call, as LiveKit runs one job process
per call) through a transaction-pooling PgBouncer into one Postgres.

    PYTHONPATH=. .venv/bin/python bench/fleet_bench.py [--calls 100] [--seconds 60] [--ramp 10]
        [--turn-interval 0.75] [--pool-size 8]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Each call is its own process, forked from a forkserver that imported LiveKit and auditagent
once (LiveKit's own job-process model on Linux): a real text `AgentSession` with the scripted
LLM of tests/support/fakes, attached to its own `AuditRecorder`, taking a user turn every
`--turn-interval` seconds (a tool call and its result every other turn) for `--seconds`, then
closing. Calls start spread over `--ramp` seconds. A private PgBouncer (tests/support/pgbouncer.py,
transaction mode, `--pool-size` server connections) fronts a scratch database on the server.

Measured: server connections PgBouncer and Postgres hold for the database (sampled every
0.25 s), clients waiting for one; hook-to-durable time of every record (the hook's wall clock,
which is the record's `at`, to the return of the commit that carried it or of the spool fsync
it went to, whichever came first: bench/fleet_call.Durability wraps both in each call process);
records spooled; CPU of the Postgres backends serving the pool (their /proc times, sampled) per
call and per call-second; then every session decrypted and its chain verified, and every user
turn, agent reply, tool call and tool result each call made checked to be there: records lost,
gap records.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings
from auditagent.store import db
from bench.fleet_call import CallResult, CallSpec, run_call
from tests.support.helpers import read_records
from tests.support.pgbouncer import private_pgbouncer

_TICK = os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class Sampler(threading.Thread):
    """Every 0.25 s: the pool (SHOW SERVERS / POOLS), the database's backends
    (pg_stat_activity), the CPU time of every backend PgBouncer connected."""

    def __init__(self, bouncer: Any, admin_url: str, dbname: str) -> None:
        super().__init__(daemon=True)
        self.bouncer, self.admin_url, self.dbname = bouncer, admin_url, dbname
        self.stop = threading.Event()
        self.peak_servers = self.peak_backends = self.peak_waiting = 0
        self.max_wait_s = 0.0
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.load: list[float] = []
        self.peak_states: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self.stop.wait(0.25):
                servers = [s for s in self.bouncer.show("SERVERS") if s["database"] == self.dbname]
                self.peak_servers = max(self.peak_servers, len(servers))
                if len(servers) >= self.peak_servers:
                    self.peak_states = sorted(s["state"] for s in servers)
                for p in self.bouncer.show("POOLS"):
                    if p["database"] == self.dbname:
                        self.peak_waiting = max(self.peak_waiting, p["cl_waiting"])
                        self.max_wait_s = max(self.max_wait_s, p["maxwait"] + p["maxwait_us"] / 1e6)
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.dbname,)
                ).fetchone()
                self.peak_backends = max(self.peak_backends, int(row[0]) if row else 0)
                for s in servers:
                    pid = int(s["remote_pid"])
                    cpu = _proc_cpu(pid)
                    if cpu is not None:
                        self.cpu_first.setdefault(pid, cpu)
                        self.cpu_last[pid] = cpu
                self.load.append(os.getloadavg()[0])

    @property
    def backend_cpu_s(self) -> float:
        return sum(self.cpu_last[p] - self.cpu_first[p] for p in self.cpu_last)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    name = f"auditagent_fleet_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def verify(direct: str, results: list[CallResult], keyring: LocalKeyring) -> dict[str, int]:
    """Decrypt every session (read_records checks its chain) and find every turn in it."""
    lost = gaps = records = 0
    for res in results:
        got = read_records(direct, uuid.UUID(res.session_id), keyring)
        records += len(got)
        kinds = [x.kind for x in got]
        gaps += kinds.count("gap")
        users = [x.text for x in got if x.kind == "user_utterance"]  # type: ignore[union-attr]
        lost += len(set(res.turns) - set(users))
        lost += max(0, len(res.turns) - kinds.count("agent_utterance"))
        lost += max(0, res.tool_turns - kinds.count("tool_call"))
        lost += max(0, res.tool_turns - kinds.count("tool_result"))
        lost += kinds[:1] != ["opened"]
        lost += kinds[-1:] != ["closed"]
    with psycopg.connect(db.libpq_url(direct)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM sessions s WHERE s.event_count <> "
            "(SELECT count(*) FROM events e WHERE e.session_id = s.id)"
        ).fetchone()
    return {
        "records": records,
        "lost": lost,
        "gaps": gaps,
        "count_mismatch": int(row[0]) if row else -1,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--ramp", type=float, default=10.0)
    ap.add_argument("--turn-interval", type=float, default=0.75)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="call processes run at this niceness: on one box they compete with Postgres and "
        "PgBouncer for CPU, which in a deployment they do not (they run on worker machines)",
    )
    args = ap.parse_args()

    ctx = mp.get_context("forkserver")
    # Imported once in the forkserver (LiveKit, auditagent, the fakes); every call forks from it.
    ctx.set_forkserver_preload(["bench.fleet_call"])
    load_before = os.getloadavg()
    with scratch_database(args.admin_url) as dbname, tempfile.TemporaryDirectory() as tmp:
        direct = db.sqlalchemy_url(args.admin_url.rpartition("/")[0] + f"/{dbname}")
        data_dir = Path(tmp) / "data"
        db.upgrade(Settings(database_url=direct, data_dir=data_dir), url=direct)
        keyring = LocalKeyring.init(Settings(data_dir=data_dir).resolved_keyring_path)
        with private_pgbouncer(
            args.admin_url, pool_size=args.pool_size, extra={"server_idle_timeout": "3600"}
        ) as bouncer:
            url = db.libpq_url(bouncer.route(direct))
            results_q = ctx.Queue()
            sampler = Sampler(bouncer, args.admin_url, dbname)
            t0 = time.time() + 5.0  # forkserver start and preload
            procs = []
            for i in range(args.calls):
                spec = CallSpec(
                    index=i,
                    url=url,
                    data_dir=str(data_dir),
                    start_at=t0 + args.ramp * i / max(1, args.calls),
                    seconds=args.seconds,
                    turn_interval=args.turn_interval,
                    nice=args.nice,
                )
                p = ctx.Process(target=run_call, args=(spec, results_q))
                p.start()
                procs.append(p)
            sampler.start()
            results: list[CallResult] = []
            deadline = t0 + args.ramp + args.seconds + 120
            while len(results) < args.calls and time.time() < deadline:
                with contextlib.suppress(queue.Empty):
                    results.append(results_q.get(timeout=1.0))
            sampler.stop.set()
            sampler.join()
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
            bouncer_cpu = _proc_cpu(bouncer.proc.pid) or 0.0
        failed = [r for r in results if r.error or not r.session_id]
        ok = [r for r in results if not r.error and r.session_id]
        checked = verify(direct, ok, keyring)

    lat = [x for r in ok for x in r.latencies]
    call_seconds = args.calls * args.seconds
    spooled = sum(r.spooled for r in ok)
    print(
        f"box: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; load before {load_before[0]:.1f}, during "
        f"{statistics.mean(sampler.load):.1f} (max {max(sampler.load):.1f})"
    )
    print(
        f"calls: {len(results)} of {args.calls} reported, {len(failed)} failed "
        f"({sorted({r.error for r in failed})}); {args.seconds:.0f} s each, a turn every "
        f"{args.turn_interval} s, niceness {args.nice}; {checked['records']:,} records "
        f"({checked['records'] / max(1.0, call_seconds):.1f}/s per call)"
    )
    print(
        f"pool: {args.pool_size}; server connections peak {sampler.peak_servers} (PgBouncer; "
        f"states then {sampler.peak_states}), "
        f"backends peak {sampler.peak_backends} (pg_stat_activity); clients waiting peak "
        f"{sampler.peak_waiting}, longest wait {sampler.max_wait_s * 1000:.0f} ms"
    )
    print(
        f"lost {checked['lost']}, gap records {checked['gaps']}, count mismatches "
        f"{checked['count_mismatch']}, spooled {spooled:.0f}"
    )
    print(
        f"hook-to-durable (commit or spool fsync) over {len(lat):,} records: "
        f"p50 {_pct(lat, 0.5) * 1000:.0f} ms, "
        f"p99 {_pct(lat, 0.99) * 1000:.0f} ms, max {max(lat, default=0) * 1000:.0f} ms"
    )
    cpu = sampler.backend_cpu_s
    print(
        f"Postgres backends CPU {cpu:.1f} s: {cpu / args.calls * 1000:.0f} ms per call, "
        f"{cpu / call_seconds * 1000:.1f} ms per call-second "
        f"({cpu / call_seconds * 100:.2f}% of a core per concurrent call); PgBouncer "
        f"{bouncer_cpu:.1f} s; call processes {sum(r.cpu_s for r in ok) / max(1, len(ok)):.1f} s "
        f"CPU, {statistics.mean([r.pss_mb for r in ok] or [0]):.0f} MB PSS and "
        f"{statistics.mean([r.private_mb for r in ok] or [0]):.0f} MB private each"
    )
    good = (
        not failed
        and checked["lost"] == 0
        and checked["gaps"] == 0
        and checked["count_mismatch"] == 0
        and sampler.peak_servers <= args.pool_size
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
