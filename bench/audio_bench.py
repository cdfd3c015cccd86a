"""Call audio (issue 15): what recording it costs, measured side by side in one run.

    PYTHONPATH=. .venv/bin/python bench/audio_bench.py [--seconds 20] [--rounds 2]

* **CPU per second of call, audio on vs off**: the same real-time voice call (a real
  AgentSession with the scripted STT/VAD/LLM/TTS and the real-time mic and speaker of
  tests/fakes) recorded into a scratch database, with ``record_audio`` on and off in
  alternation; process CPU time (every thread) over the call's wall time.
* **the voice loop's lag** in the same calls: a 10 ms ticker on the loop, how late it wakes.
* **the audio worker alone**: 60 s of two-channel call through timeline, Opus encoder, chunker
  and sealing, as fast as it goes (its thread's CPU per second of audio).
* **hook path**: ``AgentSession.emit`` with the recorder attached to a session whose audio is
  recorded, and to one whose audio is not (``record_audio=False``); and a tapped audio input's
  ``__anext__`` against the bare input it wraps.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice import io

from auditagent.audio.tap import TapAudioInput
from auditagent.audio.worker import AudioWorker, ChunkReady
from auditagent.integrity import crypto
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent.store import db
from tests.audio.audio_support import frames, scripted_session, tone


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.01)
        lags.append((loop.time() - t - 0.01) * 1000)


async def call(settings: Settings, seconds: float) -> dict[str, float]:
    """One real-time call of about ``seconds``: turns of caller speech and agent replies."""
    session, mic, _ = scripted_session()
    # a scripted session answers two lines; more turns just get the last reply again
    lags: list[float] = []
    stop = asyncio.Event()
    async with AuditRecorder(settings) as recorder:
        recorder.attach(session, tenant="bench")
        ticker = asyncio.create_task(_ticker(lags, stop))
        wall0, cpu0 = time.monotonic(), time.process_time()
        await session.start(Agent(instructions="help"))
        turns = 0
        while time.monotonic() - wall0 < seconds:
            await mic.speak(0.8)
            t = time.monotonic()
            while session.agent_state != "speaking" and time.monotonic() - t < 3:
                await asyncio.sleep(0.02)
            while session.agent_state == "speaking" and time.monotonic() - t < 6:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            turns += 1
        mic.close()
        await session.aclose()
        await recorder.flush()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        stop.set()
        await ticker
    return {
        "cpu_per_s": cpu / wall,
        "wall": wall,
        "lag_p50_ms": statistics.median(lags),
        "lag_p99_ms": _pct(lags, 0.99),
        "lag_max_ms": max(lags),
        "turns": turns,
    }


def worker_alone(seconds: int = 60) -> float:
    """Thread CPU seconds per second of two-channel audio through the worker."""
    got: list[ChunkReady] = []
    cpu: list[float] = []
    w = AudioWorker(
        sealer=crypto.Sealer(crypto.new_data_key()),
        tenant="bench",
        session_id=uuid.uuid4(),
        key_id="k",
        t0=0.0,
        on_chunk=got.append,
        on_failed=lambda _: None,
    )
    original = w._run

    def timed() -> None:
        c0 = time.thread_time()
        original()
        cpu.append(time.thread_time() - c0)

    w._run = timed  # type: ignore[method-assign]
    mic = frames(tone(1.0, rate=16_000), rate=16_000)
    tts = frames(tone(1.0, rate=24_000, freq=220), rate=24_000)
    silence = rtc.AudioFrame(bytes(640), 16_000, 1, 320)
    w.start()
    for s in range(seconds):
        t = float(s)
        if s % 2 == 0:  # caller and agent take turns, a second each; the mic never stops
            for f in mic:
                w.put(("in", t, f))
                t += f.duration
        else:
            for f in mic:
                w.put(("in", t, silence))
                t += f.duration
            w.put(("out", float(s), 0.0, 1.0, tts))
        w.put(("flush", s + 1.0))
    w.put(("close", float(seconds)))
    w.done.wait(60)
    return cpu[0] / seconds


class _Source(io.AudioInput):
    def __init__(self) -> None:
        super().__init__(label="bench")
        self.frame = rtc.AudioFrame(bytes(640), 16_000, 1, 320)

    async def __anext__(self) -> rtc.AudioFrame:
        return self.frame


async def tap_cost(n: int = 50_000) -> tuple[float, float]:
    """Median ns per ``__anext__``: bare source, tapped source (queue put included)."""
    import queue

    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    bare = _Source()
    tapped = TapAudioInput(_Source(), put=q.put_nowait, active=lambda: True)

    async def measure(src: io.AudioInput) -> float:
        pc = time.perf_counter_ns
        xs = []
        for i in range(n):
            t = pc()
            await src.__anext__()
            xs.append(pc() - t)
            if i % 1000 == 999:
                while not q.empty():
                    q.get_nowait()
        return statistics.median(xs)

    await measure(bare), await measure(tapped)
    return await measure(bare), await measure(tapped)


async def hook_cost(settings: Settings, emits: int) -> dict[str, float]:
    from livekit.agents.voice.events import AgentStateChangedEvent, UserInputTranscribedEvent

    events: list[tuple[str, Any]] = [
        (
            "agent_state_changed",
            AgentStateChangedEvent(old_state="listening", new_state="thinking"),
        ),
        ("user_input_transcribed", UserInputTranscribedEvent(transcript="hi", is_final=False)),
    ]
    out: dict[str, float] = {}
    for label, record_audio in (("audio_on", True), ("audio_off", False)):
        s = settings.model_copy(update={"record_audio": record_audio})
        session, _, _ = scripted_session()
        async with AuditRecorder(s) as recorder:
            rec = recorder.attach(session, tenant="bench")
            assert (rec.audio is not None) == record_audio

            def measure(sess: AgentSession[None] = session) -> list[float]:
                xs = []
                pc = time.perf_counter_ns
                for i in range(emits):
                    name, ev = events[i % 2]
                    t = pc()
                    sess.emit(name, ev)  # type: ignore[arg-type]
                    xs.append((pc() - t) / 1000)
                    if i % 1000 == 999:
                        sess._recorded_events.clear()
                return xs

            measure()
            xs = measure()
            out[f"emit_{label}_median_us"] = statistics.median(xs)
            out[f"emit_{label}_p99_us"] = _pct(xs, 0.99)
            if rec.audio is not None:
                await rec.audio.aclose()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--emits", type=int, default=20_000)
    args = ap.parse_args()
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=url,
                data_dir=Path(tmp) / "data",
                flush_interval=0.05,
                queue_size=max(2 * args.emits + 10_000, 100),
            )
            db.upgrade(settings, url=db.sqlalchemy_url(url))
            LocalKeyring.init(settings.resolved_keyring_path)
            hooks = await hook_cost(settings, args.emits)
            bare_ns, tapped_ns = await tap_cost()
            alone = await asyncio.to_thread(worker_alone)
            runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
            for _ in range(args.rounds):  # alternate, so drift hits both alike
                for label, flag in (("off", False), ("on", True)):
                    s = settings.model_copy(update={"record_audio": flag})
                    runs[label].append(await call(s, args.seconds))
        med = statistics.median
        py = platform.python_version()
        print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {py}")
        print(f"date: {datetime.now(timezone.utc):%Y-%m-%d}, load {os.getloadavg()[0]:.1f}")
        print(f"threads alive at the end: {threading.active_count()}")
        for k, v in hooks.items():
            print(f"{k}: {v:.2f}")
        print(f"audio input __anext__: bare {bare_ns:.0f} ns, tapped {tapped_ns:.0f} ns")
        print(f"worker alone: {alone * 100:.2f}% of a core per second of call")
        for label in ("off", "on"):
            rs = runs[label]
            cpu = med(r["cpu_per_s"] for r in rs) * 100
            p50, p99 = med(r["lag_p50_ms"] for r in rs), med(r["lag_p99_ms"] for r in rs)
            print(
                f"call audio {label}: cpu {cpu:.2f}% of a core "
                f"{[round(r['cpu_per_s'] * 100, 2) for r in rs]}, loop lag p50 {p50:.2f} ms "
                f"p99 {p99:.2f} ms max {max(r['lag_max_ms'] for r in rs):.1f} ms, "
                f"{med(r['wall'] for r in rs):.1f} s calls"
            )
        extra = med(r["cpu_per_s"] for r in runs["on"]) - med(r["cpu_per_s"] for r in runs["off"])
        print(f"audio recording adds: {extra * 100:.2f}% of a core per concurrent call")
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
