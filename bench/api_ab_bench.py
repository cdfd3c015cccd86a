"""Two checkouts' review services side by side on one database: ``GET /transcript`` of a
2,000-event session through each one's ``auditagent serve`` (loopback HTTP, keep-alive),
alternating request by request with the psycopg floor, so that the load of a shared box hits
all three alike.

    PYTHONPATH=. .venv/bin/python bench/api_ab_bench.py --baseline /path/to/other/checkout
        [--requests 60] [--events 2000]

The other checkout needs its own ``.venv``. The session is recorded by this checkout's
``AuditRecorder`` (both read the same schema and formats).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psycopg

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import principals as store_admin
from bench.api_bench import Floor, _free_port, conversation, load_avg


def serve(checkout: Path, url: str, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAGENT_")}
    env.update(AUDITAGENT_DATABASE_URL=url, AUDITAGENT_DATA_DIR=str(data), PYTHONPATH=".")
    port = _free_port()
    python = str(checkout / ".venv/bin/python")
    cli = "from auditagent.cli import run; run()"
    proc = subprocess.Popen(
        [python, "-c", cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{checkout}: auditagent serve did not come up")


async def record(settings: Settings, keyring: LocalKeyring, n: int) -> uuid.UUID:
    now = datetime.now(timezone.utc)
    async with AuditRecorder(settings, key_provider=keyring) as rec:
        h = rec.open_session(tenant="tenant-03", participant="+15550000042")
        for x in conversation(random.Random(7), now, n - 2, ["get_balance", "lookup_order"]):
            h.add(x)
        h.add(r.Closed(at=now, reason="participant_disconnected"))
    return h.session_id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--events", type=int, default=2000)
    args = ap.parse_args()
    name = f"auditagent_abbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            data.mkdir(mode=0o700)
            settings = Settings(database_url=url, data_dir=data)
            db.upgrade(settings, url=db.sqlalchemy_url(url))
            keyring = LocalKeyring.init(settings.resolved_keyring_path)
            sid = asyncio.run(record(settings, keyring, args.events))
            engine = db.make_engine(settings)
            token = store_admin.create_principal(
                engine, role="auditor", tenant="tenant-03", name="ab"
            )[1]
            floor = Floor(url, engine, keyring, sid)
            sides = {"current": Path.cwd(), "baseline": args.baseline}
            bases = {}
            for side, checkout in sides.items():
                proc, bases[side] = serve(checkout, url, data)
                procs.append(proc)
            headers = {"Authorization": f"Bearer {token}", "X-Audit-Reason": "bench"}
            path = f"/v1/sessions/{sid}/transcript"
            clients = {s: httpx.Client(base_url=b, timeout=60) for s, b in bases.items()}
            bodies = {s: c.get(path, headers=headers).content for s, c in clients.items()}
            same = bodies["current"] == bodies["baseline"]
            print(f"load average {load_avg()}; bodies byte-identical: {same}")
            ms: dict[str, list[float]] = {"floor": [], "current": [], "baseline": []}
            # A one-session list: what every request pays besides its query (auth, access log).
            lists: dict[str, list[float]] = {"current": [], "baseline": []}
            for i in range(5 + args.requests):
                f = floor.sample()["fetch+decrypt+verify"]
                got: dict[str, tuple[float, float]] = {}
                for side, c in clients.items():
                    t = time.perf_counter()
                    c.get(path, headers=headers).raise_for_status()
                    t1 = time.perf_counter()
                    c.get("/v1/sessions", headers=headers).raise_for_status()
                    got[side] = ((t1 - t) * 1e3, (time.perf_counter() - t1) * 1e3)
                if i >= 5:
                    ms["floor"].append(f)
                    for side, (tr, ls) in got.items():
                        ms[side].append(tr)
                        lists[side].append(ls)
            print(f"load average {load_avg()}")
            med = {k: statistics.median(v) for k, v in ms.items()}
            for k, v in med.items():
                print(f"  {k:<9} median {v:7.1f} ms  x{v / med['floor']:.2f} of floor")
            print(f"  current / baseline: {med['current'] / med['baseline']:.2f}")
            lm = {k: statistics.median(v) for k, v in lists.items()}
            print(
                f"  list (1 session): current {lm['current']:.1f} ms, baseline "
                f"{lm['baseline']:.1f} ms, current / baseline {lm['current'] / lm['baseline']:.2f}"
            )
            for c in clients.values():
                c.close()
            floor.close()
            engine.dispose()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
