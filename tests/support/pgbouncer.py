"""A private PgBouncer in transaction-pooling mode in front of a Postgres server, for tests and
benches: the machine's `pgbouncer` binary (Debian's package) on a free loopback port, its config,
auth file and log in a temporary directory; run as the `postgres` user when we are root
(PgBouncer refuses to run as root).

The test suite routes every database URL it hands out through one of these when
``AUDITAGENT_TEST_POOLER=pgbouncer`` (see tests/conftest.py); `.ci/run` runs the recorder, review
API and retention tests that way as well as directly.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

POOLER_ENV = "AUDITAGENT_TEST_POOLER"
DEFAULT_POOL_SIZE = 6


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PrivatePgBouncer:
    root: Path
    port: int
    pool_size: int
    proc: subprocess.Popen[bytes]

    def route(self, url: str) -> str:
        """``url`` (any server-side URL of the fronted server) rewritten to go through us."""
        u = make_url(url)
        return u.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console (simple query protocol only, hence no params)."""
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            cur = conn.execute(f"SHOW {what}")
            cols = [c.name for c in cur.description or []]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def server_connections(self, dbname: str) -> int:
        """Server connections PgBouncer holds to ``dbname`` right now (active, idle, used...)."""
        return sum(1 for s in self.show("SERVERS") if s["database"] == dbname)

    def log(self) -> str:
        try:
            return (self.root / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""


def _config(
    *,
    port: int,
    upstream_host: str,
    upstream_port: int,
    pool_size: int,
    root: Path,
    extra: dict[str, str],
) -> str:
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(root / "userlist.txt"),
        "admin_users": "postgres",
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "min_pool_size": "0",
        "reserve_pool_size": "0",
        "max_client_conn": "5000",
        "max_db_connections": str(pool_size),
        "ignore_startup_parameters": "extra_float_digits,options",
        # A test starved of a server connection fails in a minute instead of hanging the run.
        "query_wait_timeout": "60",
        # Every test has its own database, so each gets its own server pool: idle server
        # connections must go at once, or fifty test databases' pools exhaust the server's
        # max_connections (100) halfway through a run.
        "server_idle_timeout": "1",
        "logfile": str(root / "pgbouncer.log"),
        "log_connections": "0",
        "log_disconnections": "0",
        **extra,
    }
    lines = ["[databases]", f"* = host={upstream_host} port={upstream_port}", "", "[pgbouncer]"]
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def private_pgbouncer(
    upstream_url: str, *, pool_size: int = DEFAULT_POOL_SIZE, extra: dict[str, str] | None = None
) -> Iterator[PrivatePgBouncer]:
    """A transaction-mode PgBouncer in front of the server ``upstream_url`` names; ``extra``
    adds or overrides pgbouncer.ini settings."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("no pgbouncer binary: apt-get install pgbouncer")
    upstream = make_url(upstream_url)
    root = Path(tempfile.mkdtemp(prefix="auditagent-pgbouncer-"))
    demote: Callable[[], None] | None = None
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)

        def demote() -> None:
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

    port = _free_port()
    (root / "userlist.txt").write_text('"postgres" ""\n')
    ini = root / "pgbouncer.ini"
    ini.write_text(
        _config(
            port=port,
            upstream_host=upstream.host or "127.0.0.1",
            upstream_port=upstream.port or 5432,
            pool_size=pool_size,
            root=root,
            extra=extra or {},
        )
    )
    proc = subprocess.Popen(
        [binary, str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=demote,
    )
    bouncer = PrivatePgBouncer(root=root, port=port, pool_size=pool_size, proc=proc)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({proc.returncode}): {bouncer.log()[-2000:]}")
            try:
                bouncer.show("VERSION")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield bouncer
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
