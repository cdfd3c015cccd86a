"""How long the recorder's writer holds the voice loop, under a steady load.

    PYTHONPATH=. .venv/bin/python bench/loop_bench.py [--rate 450] [--seconds 20] [--rounds 2]

An agent-like feeder hands records to the recorder at ``--rate`` records/s (utterances of
~300-600 characters, per-turn timings, tool calls and results, spread over 4 sessions), on
the same event loop as everything else, into a scratch database on the local server. Two
figures, each side by side with the recorder off (the same feeder building the same records
and dropping them), alternating so the machine's drift hits both alike:

* **writer step**: every callback the loop runs is timed (``asyncio.Handle._run`` wrapped in
  this process only); a step belongs to the writer when it is a step of a task running a
  coroutine of the ``auditagent/recorder/`` package. The longest one is the longest stretch the
  writer held the loop, in wall-clock time; the same step's CPU time (``time.thread_time``) leaves
  out the moments the OS ran another process instead (this box is shared).
* **loop lateness**: a ticker asks to wake every millisecond and records how late it woke; its
  maximum is the longest the loop was unavailable to anybody, for whatever reason (the writer,
  the feeder, garbage collection, a worker thread holding the GIL).

Creates and drops its own database.
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
from auditagent.settings import Settings
from auditagent.store import db

_RECORDER_DIR = os.sep + os.path.join("auditagent", "recorder") + os.sep


class StepTimer:
    """Times every callback the loop runs; keeps those of recorder tasks apart."""

    def __init__(self) -> None:
        self.writer: list[float] = []
        self.writer_cpu: list[float] = []
        self.other_max = 0.0
        self._orig: Any = None

    def install(self) -> None:
        handle_cls = asyncio.events.Handle
        orig = handle_cls._run
        timer = self

        wall, cpu = time.perf_counter, time.thread_time

        def _run(handle: asyncio.Handle) -> None:
            t0, c0 = wall(), cpu()
            try:
                orig(handle)
            finally:
                dt, dc = wall() - t0, cpu() - c0
                if _is_writer(handle):
                    timer.writer.append(dt)
                    timer.writer_cpu.append(dc)
                elif dt > timer.other_max:
                    timer.other_max = dt

        self._orig = orig
        handle_cls._run = _run  # type: ignore[method-assign]

    def uninstall(self) -> None:
        asyncio.events.Handle._run = self._orig  # type: ignore[method-assign]


def _is_writer(handle: asyncio.Handle) -> bool:
    cb = getattr(handle, "_callback", None)
    task = getattr(cb, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return False
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    return code is not None and _RECORDER_DIR in code.co_filename


async def ticker(stop: asyncio.Event, late: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.001)
        late.append(loop.time() - t0 - 0.001)


def _turn(i: int, now: datetime) -> list[r.Record]:
    said = f"turn {i}: I would like to check the balance of my savings account please " * 4
    reply = f"turn {i}: certainly, your savings account balance is 1,234 euros as of today " * 7
    out: list[r.Record] = [
        r.UserUtterance(at=now, text=said[:300], source="stt", item_id=f"u{i}"),
        r.TurnTiming(
            at=now,
            role="user",
            item_id=f"u{i}",
            transcription_delay=0.21,
            end_of_utterance_delay=0.43,
            source="eou_metrics",
        ),
        r.AgentUtterance(
            at=now, text=reply[:400], generated_text=reply[:600], interrupted=False, item_id=f"a{i}"
        ),
        r.TurnTiming(
            at=now,
            role="assistant",
            item_id=f"a{i}",
            llm_ttft=0.31,
            tts_ttfb=0.16,
            e2e_latency=0.82,
            source="chat_message",
        ),
    ]
    if i % 3 == 0:
        out.append(r.ToolCall(at=now, call_id=f"c{i}", name="get_balance", arguments='{"a": 1}'))
        out.append(r.ToolResult(at=now, call_id=f"c{i}", name="get_balance", output="1234 EUR"))
    return out


async def feed(
    rate: float, seconds: float, sinks: list[Any] | None, stop: asyncio.Event, tick: float
) -> int:
    """``rate`` records/s handed over every ``tick`` seconds (10 ms: a steady stream; 1 s: a
    second's worth at once, as at a busy turn boundary); ``sinks`` None = recorder off."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    i = 0
    queue: list[r.Record] = []
    while loop.time() - start < seconds:
        due = int((loop.time() - start) * rate)
        while sent < due:
            if not queue:
                queue = _turn(i, datetime.now(timezone.utc))
                i += 1
            rec = queue.pop(0)
            if sinks is not None:
                sinks[sent % len(sinks)].add(rec)
            sent += 1
        await asyncio.sleep(tick)
    stop.set()
    return sent


class ThreadedProxy:
    """tests.support.netproxy.TcpProxy on a loop of its own thread, so cutting the database off does
    not add work to the loop being measured."""

    def __init__(self, host: str, port: int) -> None:
        import threading

        from tests.support.netproxy import TcpProxy

        self.proxy = TcpProxy(host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.call(self.proxy.stop())

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def one_round(
    settings: Settings,
    rate: float,
    seconds: float,
    on: bool,
    tick: float,
    proxy: ThreadedProxy | None = None,
) -> dict[str, Any]:
    timer = StepTimer()
    late: list[float] = []
    stop = asyncio.Event()
    if on:
        async with AuditRecorder(settings) as recorder:
            sinks = [recorder.open_session(tenant="bench") for _ in range(4)]
            await recorder.flush()
            timer.install()
            try:
                ticking = asyncio.create_task(ticker(stop, late))
                feeding = asyncio.create_task(feed(rate, seconds, sinks, stop, tick))
                if proxy is not None:
                    # The database goes away for the middle third, then comes back: the
                    # writer spools, then replays the backlog while the feed goes on.
                    await asyncio.sleep(seconds / 3)
                    await asyncio.to_thread(proxy.call, proxy.proxy.stop())
                    await asyncio.sleep(seconds / 3)
                    await asyncio.to_thread(proxy.call, proxy.proxy.start())
                sent = await feeding
                await ticking
                await recorder.flush()
            finally:
                timer.uninstall()
            for s in sinks:
                s.close()
    else:
        timer.install()
        try:
            ticking = asyncio.create_task(ticker(stop, late))
            sent = await feed(rate, seconds, None, stop, tick)
            await ticking
        finally:
            timer.uninstall()
    w = sorted(timer.writer)
    return {
        "writer_cpu_max_ms": max(timer.writer_cpu, default=0.0) * 1000,
        "on": on,
        "records": sent,
        "writer_steps": len(w),
        "writer_max_ms": (w[-1] * 1000) if w else 0.0,
        "writer_p999_ms": (w[int(len(w) * 0.999)] * 1000) if w else 0.0,
        "writer_over_2ms": sum(1 for x in w if x > 0.002),
        "other_max_ms": timer.other_max * 1000,
        "late_max_ms": max(late) * 1000,
        "late_p99_ms": sorted(late)[int(len(late) * 0.99)] * 1000,
        "late_median_ms": statistics.median(late) * 1000,
    }


def _show(res: dict[str, Any]) -> str:
    label = "recorder on " if res["on"] else "recorder off"
    s = f"{label}: {res['records']} records;"
    if res["on"]:
        s += (
            f" writer steps {res['writer_steps']}, longest {res['writer_max_ms']:.2f} ms,"
            f" p99.9 {res['writer_p999_ms']:.2f} ms, over 2 ms: {res['writer_over_2ms']},"
            f" longest in CPU time {res['writer_cpu_max_ms']:.2f} ms;"
        )
    s += (
        f" longest other callback {res['other_max_ms']:.2f} ms;"
        f" loop lateness max {res['late_max_ms']:.2f} ms,"
        f" p99 {res['late_p99_ms']:.2f} ms, median {res['late_median_ms']:.3f} ms"
    )
    return s


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--rate", type=float, default=450.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--ticks",
        default="0.01,1",
        help="comma-separated feeder periods in seconds: 0.01 steady, 1 = bursts",
    )
    args = ap.parse_args()
    name = f"auditagent_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(database_url=url, data_dir=Path(tmp) / "data")
            db.upgrade(settings, url=db.sqlalchemy_url(url))
            LocalKeyring.init(settings.resolved_keyring_path)
            target = psycopg.conninfo.conninfo_to_dict(url)
            proxy = ThreadedProxy(str(target.get("host")), int(target.get("port") or 5432))
            proxy.call(proxy.proxy.start())
            via_proxy = Settings(
                database_url=f"postgresql://{target.get('user')}@127.0.0.1:{proxy.proxy.port}/"
                f"{name}",
                data_dir=settings.data_dir,
            )
            print(f"python {platform.python_version()}, {os.cpu_count()} cpu, load", end=" ")
            print(" ".join(f"{x:.2f}" for x in os.getloadavg()))
            print(f"rate {args.rate:.0f} records/s for {args.seconds:.0f} s per round")
            for _ in range(args.rounds):
                for tick in (float(x) for x in args.ticks.split(",")):
                    print(f"-- handed over every {tick * 1000:.0f} ms")
                    for on in (False, True):
                        res = await one_round(settings, args.rate, args.seconds, on, tick)
                        print(_show(res))
                print("-- every 10 ms, the database cut off for the middle third of the round")
                for on in (False, True):
                    res = await one_round(
                        via_proxy, args.rate, args.seconds, on, 0.01, proxy if on else None
                    )
                    print(_show(res))
            proxy.close()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
