"""A small sealed session built with the recorder's own sealer, no database: what the reader's
unit tests decrypt, verify and shape."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from auditagent import records
from auditagent import records as r
from auditagent.integrity import chain, crypto
from auditagent.integrity.envelope import Envelope, SessionSealer

T0 = datetime(2026, 4, 5, 6, 7, 8, 123456, tzinfo=timezone.utc)


@dataclass
class Sealed:
    key: bytes
    session: SimpleNamespace
    envelopes: list[Envelope]
    records: list[records.Record]

    def tuples(self) -> list[tuple[Any, ...]]:
        return [
            (e.seq, e.tenant, e.kind, e.at, e.key_id, e.nonce, e.ciphertext, e.prev_hash, e.hash)
            for e in self.envelopes
        ]


def conversation() -> list[records.Record]:
    at = [T0 + timedelta(seconds=i) for i in range(8)]
    return [
        r.Opened(at=at[0], tenant="acme", architecture="pipeline", agent_name="intake"),
        r.UserUtterance(at=at[1], text="my zebrafinch is late", source="stt", item_id="u1"),
        r.AgentUtterance(at=at[2], text="let me check", item_id="a1"),
        r.TurnTiming(
            at=at[3],
            item_id="a1",
            role="assistant",
            llm_ttft=0.25,
            tts_ttfb=0.125,
            source="chat_message",
        ),
        r.ToolCall(at=at[4], call_id="c1", name="lookup_order", arguments='{"id": 7}'),
        r.ToolResult(at=at[5], call_id="c1", name="lookup_order", output="shipped"),
        r.TurnTiming(at=at[6], role="user", end_of_utterance_delay=0.5, source="eou_metrics"),
        r.Closed(at=at[7], reason="participant_disconnected"),
    ]


def seal(recs: list[records.Record], *, session_id: uuid.UUID | None = None) -> Sealed:
    key = crypto.new_data_key()
    sid = session_id or uuid.uuid4()
    sealer = SessionSealer(crypto.Sealer(key), tenant="acme", session_id=sid, key_id="dk:1")
    envs: list[Envelope] = []
    prev = chain.GENESIS
    for seq, rec in enumerate(recs):
        env = sealer.seal(
            seq=seq, kind=rec.kind, at=rec.at, plaintext=records.encode(rec), prev_hash=prev
        )
        envs.append(env)
        prev = env.hash
    session = SimpleNamespace(
        id=sid, tenant="acme", event_count=len(envs), head_hash=prev, status="closed"
    )
    return Sealed(key=key, session=session, envelopes=envs, records=recs)
