"""Shared pieces of the API tests: keys, recorded sessions, access-log rows (the keyring,
engine and app client fixtures are in tests/conftest.py).

Sessions are written by the real ``AuditRecorder`` so the API reads exactly what production
stores; only tamper tests touch rows directly.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy import Engine

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from auditagent.store import principals as principal_store

CANARY = "Canary-Heron-5521"


def make_token(engine: Engine, role: str, tenant: str | None, name: str | None = None) -> str:
    _, token = principal_store.create_principal(
        engine, role=role, tenant=tenant, name=name or f"{role}-{tenant or 'all'}"
    )
    return token


def auth(token: str, reason: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}"}
    if reason is not None:
        h["X-Audit-Reason"] = reason
    return h


@dataclass(frozen=True)
class Recorded:
    session_id: uuid.UUID
    tenant: str
    participant: str


def record_conversation(
    settings: Settings,
    keyring: LocalKeyring,
    *,
    tenant: str,
    participant: str | None = None,
    agent: str = "intake",
    architecture: str = "pipeline",
    tool: str = "get_balance",
    e2e: float = 0.8,
) -> Recorded:
    """A short, realistic conversation recorded through the real recorder."""
    participant = participant or f"+1555{uuid.uuid4().hex[:6]}"

    async def go() -> uuid.UUID:
        async with AuditRecorder(settings, key_provider=keyring) as recorder:
            t0 = datetime.now(timezone.utc)

            def at(s: float) -> datetime:
                return t0 + timedelta(seconds=s)

            rec = recorder.open_session(
                tenant=tenant,
                participant=participant,
                labels={"agent": agent},
                opened=r.Opened(
                    at=t0,
                    tenant=tenant,
                    participant=participant,
                    agent_name=agent,
                    architecture=architecture,  # type: ignore[arg-type]
                    labels={"agent": agent},
                ),
            )
            rec.add(
                r.UserUtterance(
                    at=at(1), text=f"what is my balance {CANARY}", source="stt", item_id="u1"
                )
            )
            rec.add(
                r.TurnTiming(
                    at=at(1.1),
                    role="user",
                    item_id="u1",
                    transcription_delay=0.2,
                    end_of_utterance_delay=0.4,
                    source="eou_metrics",
                )
            )
            rec.add(r.ToolCall(at=at(1.5), call_id="c1", name=tool, arguments='{"account": "A-1"}'))
            rec.add(r.ToolResult(at=at(1.7), call_id="c1", name=tool, output="42 EUR"))
            rec.add(
                r.AgentUtterance(
                    at=at(2),
                    text="Your balance is",
                    generated_text="Your balance is 42 euros.",
                    interrupted=True,
                    item_id="a1",
                )
            )
            rec.add(
                r.TurnTiming(
                    at=at(2.1),
                    role="assistant",
                    item_id="a1",
                    llm_ttft=0.3,
                    tts_ttfb=0.15,
                    e2e_latency=e2e,
                    source="chat_message",
                )
            )
            rec.add(r.Handoff(at=at(3), old_agent_name="intake", new_agent_name="billing"))
            rec.add(
                r.ErrorRecord(at=at(3.5), source="TTS", message="tts timeout", recoverable=True)
            )
            rec.add(r.Closed(at=at(4), reason="participant_disconnected"))
            await recorder.flush()
            return rec.session_id

    return Recorded(session_id=asyncio.run(go()), tenant=tenant, participant=participant)


def access_rows(url: str, session_id: uuid.UUID | None = None) -> list[tuple[object, ...]]:
    with psycopg.connect(db.libpq_url(url)) as conn:
        if session_id is None:
            return conn.execute(
                "SELECT seq, action, session_id FROM access_log ORDER BY seq"
            ).fetchall()
        return conn.execute(
            "SELECT seq, action, principal_name, reason FROM access_log WHERE session_id = %s"
            " ORDER BY seq",
            (session_id,),
        ).fetchall()
