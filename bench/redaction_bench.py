"""The writer's time per record with redaction ``pci`` and ``pii`` against ``off``, side by side.

    PYTHONPATH=. .venv/bin/python bench/redaction_bench.py [--turns 2000] [--rounds 5]

Per record the writer's CPU path before storage: the redaction step, the record's encoding, and
AES-256-GCM sealing with the SHA-256 chain link (``SessionSealer.seal``). The feed has the turn
shape of bench/loop_bench.py: a caller's sentence of 100-200 characters and an agent's reply of
300 characters heard / up to 420 generated, with the times, amounts, dates and reference
numbers such calls carry; per-turn timings; a tool call and result every third turn. Every
tenth turn adds a payment exchange: the agent asks for the card, the expiry and the security
code; the caller reads them out in digits or in words; a tool call carries them as JSON.
Policies alternate within each round on the same records; the figure is the median over
rounds of (total time / records), by wall clock and by CPU time (this thread's for the CPU path,
this process's end to end), which waiting for a shared core does not inflate. Target: ``pci``
adds at most 20 % to ``off``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from auditagent import records as r
from auditagent.integrity import crypto
from auditagent.integrity.envelope import SessionSealer
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.redaction import Redactor
from auditagent.redaction.step import RedactionStep
from auditagent.settings import Settings
from auditagent.store import db

POLICIES = ("off", "pci", "pii")


USER = (
    "Hi, I'm calling about my appointment on the 14th, I think it was at 3:30 but I'm not sure "
    "whether that was moved, could you check for me please?",
    "Yes that's right, it's for my daughter, she's 7, and we were hoping to see Dr. Patel again "
    "because she knows her history with the asthma.",
    "My account number is 10442 and the last payment was 125 dollars on March 3rd I believe.",
    "Can you call me back at 415 555 2671 after five, I'm at work until then and can't talk.",
    "I would like to check the balance of my savings account and whether the transfer of "
    "2,500 went through yesterday, the reference was 88213.",
    "No, the other one. The one at the clinic on 12th street, suite 400, not the hospital.",
)
AGENT = (
    "Certainly. I can see an appointment on Thursday the 14th at 3:30 PM with Dr. Patel at the "
    "Main Street clinic. It has not been moved. Would you like me to send a reminder by text "
    "message the day before? I can also add a note for the doctor about the asthma follow-up "
    "so that she has the latest peak flow readings ready when you arrive.",
    "Thank you for waiting. Your savings account balance is 1,234 euros as of today, and the "
    "transfer of 2,500 euros with reference 88213 was completed yesterday at 4:12 PM. Is there "
    "anything else I can help you with today, for example setting up a standing order?",
    "I understand. I have noted that you prefer a call back after 5 PM. One of our team will "
    "call you then. In the meantime, you can also reach us through the app, which is open "
    "twenty-four hours a day, seven days a week.",
)


def _turn(i: int, now: datetime) -> list[r.Record]:
    said = USER[i % len(USER)]
    reply = AGENT[i % len(AGENT)]
    out: list[r.Record] = [
        r.UserUtterance(at=now, text=said, source="stt", item_id=f"u{i}"),
        r.TurnTiming(
            at=now, role="user", item_id=f"u{i}", transcription_delay=0.21, source="eou_metrics"
        ),
        r.AgentUtterance(at=now, text=reply[:300], generated_text=reply, item_id=f"a{i}"),
        r.TurnTiming(
            at=now, role="assistant", item_id=f"a{i}", llm_ttft=0.31, source="chat_message"
        ),
    ]
    if i % 3 == 0:
        out.append(
            r.ToolCall(
                at=now,
                call_id=f"c{i}",
                name="find_appointment",
                arguments='{"patient_id": "P-10442", "date": "2026-11-14"}',
            )
        )
        out.append(
            r.ToolResult(
                at=now,
                call_id=f"c{i}",
                name="find_appointment",
                output='{"time": "15:30", "doctor": "Patel", "room": 400}',
            )
        )
    if i % 10 == 0:
        out += _payment(i, now)
    return out


def _payment(i: int, now: datetime) -> list[r.Record]:
    spoken = "four one one one, one one one one, one one one one, one one one one"
    return [
        r.AgentUtterance(at=now, text="Please read me the card number on the front of the card."),
        r.UserUtterance(at=now, text=spoken if i % 20 else "4111 1111 1111 1111", source="stt"),
        r.AgentUtterance(at=now, text="Thanks. The expiry date and the security code, please?"),
        r.UserUtterance(at=now, text="twelve twenty-eight, and it's one two three", source="stt"),
        r.ToolCall(
            at=now,
            call_id=f"p{i}",
            name="charge_card",
            arguments='{"card_number": "4111111111111111", "security_code": "123", '
            '"expiration_month": 12, "expiration_year": 2028, "amount": 42}',
        ),
        r.ToolResult(at=now, call_id=f"p{i}", name="charge_card", output='{"ok": true}'),
    ]


def feed(turns: int) -> list[r.Record]:
    start = datetime.now(timezone.utc).timestamp()
    # a turn every 6 s, so a question's hold on the answers expires as it would in a call
    return [
        rec
        for i in range(turns)
        for rec in _turn(i, datetime.fromtimestamp(start + 6 * i, timezone.utc))
    ]


def one_pass(policy: str, recs: list[r.Record]) -> tuple[float, float]:
    """Seconds per record for the redaction step, encoding and sealing: wall clock, and this
    thread's CPU time (which time spent waiting for a shared core does not inflate)."""
    step = RedactionStep(Redactor(policy))
    sid = uuid.uuid4()
    sealer = SessionSealer(
        crypto.Sealer(crypto.new_data_key()), tenant="bench", session_id=sid, key_id="k1"
    )
    prev = bytes(32)
    clock = time.perf_counter
    t0, c0 = clock(), time.thread_time()
    seq = 0
    for rec in recs:
        for out in step(rec):
            env = sealer.seal(
                seq=seq, kind=out.kind, at=out.at, plaintext=r.encode(out), prev_hash=prev
            )
            prev = env.hash
            seq += 1
    return (clock() - t0) / len(recs), (time.thread_time() - c0) / len(recs)


async def ingest(
    settings: Settings, policy: str, recs: list[r.Record], sessions: int
) -> tuple[float, float]:
    """Seconds per record through the whole writer (redaction, sealing, chain, binary COPY,
    session updates) into Postgres: ``sessions`` interleaved calls, each the same feed. Wall
    clock, and this process's CPU time (all its threads; not the server's)."""
    async with AuditRecorder(settings) as recorder:
        hs = [recorder.open_session(tenant="bench", redaction=policy) for _ in range(sessions)]
        await recorder.flush()
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for rec in recs:
            for h in hs:
                h.add(rec)
                n += 1
            if n % 5000 < sessions:
                await asyncio.sleep(0)  # let the writer run, as the voice loop would
        await recorder.flush()
        return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def _table(title: str, got: dict[str, list[float]]) -> None:
    base = statistics.median(got["off"])
    print(title)
    print("| policy | µs per record (median) | range | vs off |")
    print("|---|---|---|---|")
    for p in POLICIES:
        med = statistics.median(got[p])
        lo, hi = min(got[p]), max(got[p])
        print(
            f"| {p} | {med * 1e6:.2f} | {lo * 1e6:.2f}-{hi * 1e6:.2f} | "
            f"{(med / base - 1) * 100:+.1f} % |"
        )


async def end_to_end(admin_url: str, recs: list[r.Record], rounds: int, sessions: int) -> None:
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=url,
                data_dir=Path(tmp) / "data",
                queue_size=len(recs) * sessions + 10_000,
                batch_size=5000,
                flush_interval=0.05,
            )
            db.upgrade(settings, url=db.sqlalchemy_url(url))
            LocalKeyring.init(settings.resolved_keyring_path)
            got: dict[str, list[float]] = {p: [] for p in POLICIES}
            cpu: dict[str, list[float]] = {p: [] for p in POLICIES}
            for k in range(rounds):
                order = POLICIES if k % 2 == 0 else tuple(reversed(POLICIES))
                for p in order:
                    wall, used = await ingest(settings, p, recs, sessions)
                    got[p].append(wall)
                    cpu[p].append(used)
        _table(f"end to end into Postgres, {sessions} interleaved sessions (wall clock)", got)
        _table("end to end, this process's CPU time (writer and caller; not Postgres)", cpu)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-db", action="store_true", help="the CPU path only")
    args = ap.parse_args()
    recs = feed(args.turns)
    one_pass("pii", recs[:200])  # warm caches and lazy imports
    got: dict[str, list[float]] = {p: [] for p in POLICIES}
    cpu: dict[str, list[float]] = {p: [] for p in POLICIES}
    for k in range(args.rounds):
        order = POLICIES if k % 2 == 0 else tuple(reversed(POLICIES))
        for p in order:
            wall, used = one_pass(p, recs)
            got[p].append(wall)
            cpu[p].append(used)
    print(f"{len(recs)} records per pass, {args.rounds} rounds")
    _table("CPU path: redaction step + encode + seal (wall clock)", got)
    _table("CPU path, this thread's CPU time", cpu)
    if not args.no_db:
        per_session = recs[: max(1, len(recs) // args.sessions)]
        asyncio.run(end_to_end(args.admin_url, per_session, args.rounds, args.sessions))


if __name__ == "__main__":
    main()
