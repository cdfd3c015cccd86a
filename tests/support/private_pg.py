"""A throwaway Postgres cluster of the test's own, for faults the shared server must not suffer
(SIGSTOP of every server process). initdb + pg_ctl from the machine's Postgres binaries, on a
free loopback port, in a temporary directory; run as the `postgres` user when the test is root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PrivatePostgres:
    root: Path
    port: int
    bindir: Path
    _demote: Callable[[], None] | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            preexec_fn=self._demote,
            timeout=120,
        )

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        master = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        out = [master]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == master:
                    out.append(int(Path(stat).parent.name))
        return out

    def signal_all(self, sig: signal.Signals) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no Postgres server binaries under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="auditagent-pg-"))
    demote: Callable[[], None] | None = None
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)

        def demote() -> None:
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

    pg = PrivatePostgres(root=root, port=_free_port(), bindir=bindir, _demote=demote)
    try:
        pg.run("initdb", "-D", str(pg.data), "-A", "trust", "-U", "postgres", "--no-sync")
        pg.run(
            "pg_ctl",
            "-D",
            str(pg.data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.signal_all(signal.SIGCONT)
        with contextlib.suppress(Exception):
            pg.run("pg_ctl", "-D", str(pg.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
