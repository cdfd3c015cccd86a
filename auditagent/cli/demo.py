"""`auditagent demo`: the whole product on a fresh machine, with no keys and no database.

Embedded Postgres (unless AUDITAGENT_DATABASE_URL is set), migrations, a keyring, the scripted
conversation recorded through the four seed systems against local protocol simulators with the
real LiveKit plugins, an admin token, and the review API serving those records.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from ..errors import AuditagentError
from ..keys import ensure_keyring
from ..settings import Settings
from ..store import db

log = logging.getLogger("auditagent.demo")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo", help="record the seed systems through local simulators and serve the review API"
    )
    p.add_argument("--host", default=None, help="bind address (default AUDITAGENT_API_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default AUDITAGENT_API_PORT)")
    p.add_argument("--tenant", default="demo", help="tenant the demo sessions belong to")
    p.add_argument(
        "--no-serve", action="store_true", help="record, print the token, and exit without serving"
    )
    p.set_defaults(func=_demo)


@dataclass
class SystemResult:
    system: str
    session_id: uuid.UUID | None
    seconds: float
    error: str | None = None


async def record_seed_systems(settings: Settings, *, tenant: str) -> list[SystemResult]:
    """Run every seed system once, concurrently, into the configured database."""
    from ..recorder import AuditRecorder
    from ..simulators.server import SimulatorServer
    from ..simulators.systems import SEED_SYSTEMS, run_seed_system

    results: list[SystemResult] = []
    async with SimulatorServer() as sim, AuditRecorder(settings) as recorder:

        async def one(name: str) -> SystemResult:
            t0 = time.monotonic()
            try:
                rec = await run_seed_system(
                    name,
                    sim=sim,
                    recorder=recorder,
                    tenant=tenant,
                    participant=f"+1555{uuid.uuid4().int % 10_000_000:07d}",
                )
                return SystemResult(name, rec.session_id, time.monotonic() - t0)
            except Exception as exc:  # one failing system must not hide the others
                return SystemResult(name, None, time.monotonic() - t0, type(exc).__name__)

        results = list(await asyncio.gather(*(one(n) for n in SEED_SYSTEMS)))
        await recorder.flush()
    return results


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from ..store.admin import create_principal

    t0 = time.monotonic()
    url = db.resolve_database_url(settings)
    where = (
        f"embedded Postgres in {settings.data_dir / 'pg'}"
        if not settings.database_url
        else db.describe_url(url)
    )
    print(f"database: {where}", flush=True)
    db.upgrade(settings, url=url)
    keyring = ensure_keyring(settings)
    print(f"keyring: {settings.resolved_keyring_path} (master key {keyring.current_key_id()})")
    # The demo's own settings reuse the resolved URL so the recorder does not start a second
    # embedded server handle.
    run_settings = settings.model_copy(update={"database_url": url})
    results = asyncio.run(record_seed_systems(run_settings, tenant=args.tenant))
    failed = [r for r in results if r.session_id is None]
    for r in results:
        status = f"session {r.session_id}" if r.session_id else f"FAILED ({r.error})"
        print(f"recorded {r.system:<18} {status}  in {r.seconds:.1f}s", flush=True)
    engine = db.make_engine(settings, url=url)
    try:
        _, token = create_principal(engine, role="admin", tenant=None, name="demo-admin")
    finally:
        engine.dispose()
    host = args.host or settings.api_host
    port = args.port if args.port is not None else settings.api_port
    base = f"http://{host}:{port}"
    print(
        f"recorded {len(results) - len(failed)}/{len(results)} seed systems in "
        f"{time.monotonic() - t0:.1f}s"
    )
    print(f"review API: {base}/docs  (sessions: {base}/v1/sessions)")
    print(f'try: curl -H "Authorization: Bearer $TOKEN" {base}/v1/sessions')
    print("admin token (shown once):")
    print(token, flush=True)
    if failed:
        raise AuditagentError(
            f"{len(failed)} seed system(s) failed: {', '.join(r.system for r in failed)}",
            fix="rerun with -v to see the simulator and plugin logs",
        )
    if args.no_serve:
        return 0
    from .serve import _serve

    return _serve(argparse.Namespace(host=host, port=port), run_settings)
