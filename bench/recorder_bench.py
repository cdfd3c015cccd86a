"""Recorder benchmarks: hook cost on the voice loop, and sustained ingest vs the raw COPY ceiling.

    python bench/recorder_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                   [--events 200000] [--emits 20000]

Creates and drops its own database. Ratios are measured side by side in one run: these machines
are noisy, absolute numbers drift between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.recorder.ingest import EVENT_COLUMNS, EVENT_TYPES
from auditagent.settings import Settings
from auditagent.store import db


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def hook_cost(settings: Settings, emits: int) -> dict[str, float]:
    from livekit.agents import AgentSession
    from livekit.agents.voice.events import AgentStateChangedEvent, UserInputTranscribedEvent

    from tests.support.fakes.llm import ScriptedLLM

    bare: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    hooked: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    events: list[tuple[str, Any]] = [
        (
            "agent_state_changed",
            AgentStateChangedEvent(old_state="listening", new_state="thinking"),
        ),
        (
            "user_input_transcribed",
            UserInputTranscribedEvent(transcript="hello there", is_final=False),
        ),
    ]
    out: dict[str, float] = {}
    async with AuditRecorder(settings) as recorder:
        recorder.attach(hooked, tenant="bench")

        def measure(s: AgentSession[None]) -> list[float]:
            samples: list[float] = []
            pc = time.perf_counter_ns
            for i in range(emits):
                name, ev = events[i % len(events)]
                t0 = pc()
                s.emit(name, ev)  # type: ignore[arg-type]
                samples.append((pc() - t0) / 1000)
                if i % 1000 == 999:
                    s._recorded_events.clear()
            return samples

        measure(bare), measure(hooked)  # warm up
        b = measure(bare)
        h = measure(hooked)
        # LiveKit's emit per event with our hook installed, minus the same emit with none.
        out["emit_bare_median_us"] = statistics.median(b)
        out["emit_hooked_median_us"] = statistics.median(h)
        out["handler_median_us"] = statistics.median(h) - statistics.median(b)
        out["handler_p99_us"] = _pct(h, 0.99) - _pct(b, 0.99)
        out["emit_hooked_p99_us"] = _pct(h, 0.99)
        await recorder.flush()
    return out


async def ingest(settings: Settings, n: int, sessions: int = 100) -> float:
    per = n // sessions
    text = "x" * 260  # a ~300-byte record once encoded, like the perf anchors' payload
    now = datetime.now(timezone.utc)
    recs = [r.UserUtterance(at=now, text=f"{text}{i:06d}", source="stt") for i in range(1000)]
    async with AuditRecorder(settings) as recorder:
        hs = [recorder.open_session(tenant="bench") for _ in range(sessions)]
        await recorder.flush()
        t0 = time.perf_counter()
        i = 0
        for _ in range(per):
            for h in hs:  # interleaved, as concurrent calls would be
                h.add(recs[i % 1000])
                i += 1
            if i % 20_000 < sessions:
                await asyncio.sleep(0)  # let the writer run, as the voice loop would
        await recorder.flush()
        elapsed = time.perf_counter() - t0
    return n / elapsed


def raw_copy(url: str, n: int, sessions: int = 100) -> float:
    payload = [
        (os.urandom(12), os.urandom(316), os.urandom(32), os.urandom(32)) for _ in range(1000)
    ]
    sids = [uuid.uuid4() for _ in range(sessions)]
    now = datetime.now(timezone.utc)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS events_ceiling")
        conn.execute("CREATE TABLE events_ceiling (LIKE events INCLUDING ALL)")
        conn.commit()
        cols = ", ".join(EVENT_COLUMNS)
        t0 = time.perf_counter()
        i = 0
        per = n // sessions
        while i < n:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY events_ceiling ({cols}) FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.set_types(EVENT_TYPES)
                for _ in range(5000):
                    if i >= n:
                        break
                    nonce, ct, ph, h = payload[i % 1000]
                    cp.write_row(
                        (
                            sids[i % sessions],
                            i // sessions,
                            "bench",
                            "user_utterance",
                            now,
                            "k",
                            nonce,
                            ct,
                            ph,
                            h,
                            now,
                        )
                    )
                    i += 1
            conn.commit()
        elapsed = time.perf_counter() - t0
        del per
        conn.execute("DROP TABLE events_ceiling")
        conn.commit()
    return n / elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--emits", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            settings = Settings(
                database_url=url,
                data_dir=data,
                queue_size=max(args.events + 10_000, 100),
                batch_size=5000,
                flush_interval=0.05,
            )
            db.upgrade(settings, url=db.sqlalchemy_url(url))
            LocalKeyring.init(settings.resolved_keyring_path)
            hooks = await hook_cost(settings, args.emits)
            ratios, ours, ceil = [], [], []
            for _ in range(args.rounds):  # alternate, so drift hits both alike
                c_rate = raw_copy(url, args.events)
                o_rate = await ingest(settings, args.events)
                ours.append(o_rate)
                ceil.append(c_rate)
                ratios.append(o_rate / c_rate)
        py = platform.python_version()
        print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {py}")
        print(f"date: {datetime.now(timezone.utc):%Y-%m-%d}")
        for k, v in hooks.items():
            print(f"{k}: {v:.2f}")
        med = statistics.median
        ours_runs, ceil_runs = [round(x) for x in ours], [round(x) for x in ceil]
        print(f"ingest (seal+chain+COPY) rows/s: median {med(ours):,.0f} {ours_runs}")
        print(f"raw COPY ceiling rows/s:         median {med(ceil):,.0f} {ceil_runs}")
        ratio_runs = [round(x, 2) for x in ratios]
        print(f"ratio ingest/ceiling: median {med(ratios):.2f} {ratio_runs}")
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
