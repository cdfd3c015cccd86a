"""Helpers for retention, hold, erasure and checkpoint tests: real sessions through the real
recorder, direct reads of what is left, the CLI's verify and checkpoint commands. (The database
of their own these tests get is the ``fresh_settings`` fixture, tests/conftest.py.)"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db


@dataclass(frozen=True)
class Recorded:
    session_id: uuid.UUID
    tenant: str
    participant: str
    ended_at: datetime


def record_sessions(
    settings: Settings,
    keyring: LocalKeyring,
    specs: list[tuple[str, str, str]],
    *,
    utterances: int = 3,
    close: bool = True,
    ended_days_ago: float = 0,
) -> list[Recorded]:
    """Record one short conversation per (tenant, participant, agent) and return them.

    ``ended_days_ago`` injects the recorder's clock: every record, the close included, is
    stamped that long ago, so the session ended then as far as its chain (and ``ended_at``)
    says — the way tests age sessions now that a run never uses a clock ahead of the
    database's and ``ended_at`` is written once."""

    async def go() -> list[uuid.UUID]:
        ids = []
        async with AuditRecorder(settings, key_provider=keyring) as recorder:
            for tenant, participant, agent in specs:
                t0 = datetime.now(timezone.utc) - timedelta(
                    days=ended_days_ago, seconds=utterances + 2 if ended_days_ago else 0
                )
                labels = {"agent": agent}
                rec = recorder.open_session(
                    tenant=tenant,
                    participant=participant,
                    labels=labels,
                    opened=r.Opened(
                        at=t0,
                        tenant=tenant,
                        participant=participant,
                        architecture="pipeline",
                        labels=labels,
                    ),
                )
                for i in range(utterances):
                    rec.add(
                        r.UserUtterance(
                            at=t0 + timedelta(seconds=i), text=f"utterance {i}", source="stt"
                        )
                    )
                if close and ended_days_ago:
                    rec.add(r.Closed(at=t0 + timedelta(seconds=utterances + 1), reason="done"))
                elif close:
                    rec.close(reason="done")
                ids.append(rec.session_id)
            await recorder.flush()
        return ids

    ids = asyncio.run(go())
    ends = ended_at(settings, ids)
    return [
        Recorded(session_id=i, tenant=t, participant=p, ended_at=ends[i])
        for i, (t, p, _) in zip(ids, specs, strict=True)
    ]


def ended_at(settings: Settings, ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT id, ended_at FROM sessions WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {i: e for i, e in rows}


def superuser_sql(
    settings: Settings, *statements: tuple[str, tuple[object, ...]], disable: tuple[str, ...] = ()
) -> None:
    """What a database superuser can do: switch guard triggers off (``table.trigger``), run
    SQL, switch them back on."""
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        for t in disable:
            table, trigger = t.split(".")
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        for sql, params in statements:
            conn.execute(sql, params)
        for t in disable:
            table, trigger = t.split(".")
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


def set_ended(settings: Settings, session_id: uuid.UUID, when: datetime) -> None:
    """A superuser rewriting a session's end time (the guard allows it only once)."""
    superuser_sql(
        settings,
        ("UPDATE sessions SET ended_at = %s WHERE id = %s", (when, session_id)),
        disable=("sessions.sessions_guard",),
    )


def state(settings: Settings, session_id: uuid.UUID) -> tuple[str, int, bool]:
    """(status, events left, data key still wrapped)."""
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        status = conn.execute("SELECT status FROM sessions WHERE id = %s", (session_id,)).fetchone()
        n = conn.execute(
            "SELECT count(*) FROM events WHERE session_id = %s", (session_id,)
        ).fetchone()
        key = conn.execute(
            "SELECT wrapped IS NOT NULL FROM data_keys WHERE session_id = %s", (session_id,)
        ).fetchone()
    assert status is not None and n is not None and key is not None
    return status[0], int(n[0]), bool(key[0])


def deletion_rows(settings: Settings) -> list[tuple[object, ...]]:
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        return conn.execute(
            "SELECT seq, session_id, policy, reason, event_count, final_hash, run_id "
            "FROM deletion_records ORDER BY seq"
        ).fetchall()


def verify_all(settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`auditagent verify --all --checkpoints DIR` on the product's own checkpoint directory
    (what retention runs, erasures, policy/hold changes and `checkpoint write` fill)."""
    from auditagent.cli import main

    capsys.readouterr()
    code = main(["verify", "--all", "--checkpoints", str(settings.resolved_checkpoint_dir)])
    out, _ = capsys.readouterr()
    return code, out


def checkpoint_write(capsys: pytest.CaptureFixture[str]) -> None:
    """What cron does: `auditagent checkpoint write`."""
    from auditagent.cli import main

    assert main(["checkpoint", "write"]) == 0
    capsys.readouterr()


def sql_rows(
    settings: Settings, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    assert settings.database_url
    with psycopg.connect(db.libpq_url(settings.database_url)) as conn:
        return conn.execute(sql, params).fetchall()


def os_user() -> str:
    import getpass

    return getpass.getuser()
