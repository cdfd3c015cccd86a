"""Search benchmark: search p95 over 10k sessions x 100 events, and the writer's cost of indexing.

    PYTHONPATH=. python bench/search_bench.py [--sessions 10000] [--events 100]
        [--writer-records 20000] [--rounds 3] [--queries 60]

Creates and drops its own database. In one run:

1. writer cost: the same conversation records (utterances of a Zipf vocabulary, tool calls and
   results) through ``SessionRecording.add`` -> writer -> database until ``flush()`` returns,
   with AUDITAGENT_SEARCH_INDEX off, on without word filters, on, and on with rows handed over
   every write batch, alternating rounds; microseconds per record;
2. a tenant of ``--sessions`` x ``--events`` recorded through the real recorder (indexing on),
   with rare words planted in 5 sessions each and two-word phrases planted in 5 sessions each
   (both words also occur apart elsewhere, so the confirm step has work to throw away);
3. ``auditagent.search.search`` for each rare word and each phrase (one page of 20, as the API
   runs it), wall-clock per search: p50/p95/max, candidates decrypted, results.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.search import parse_query, search
from auditagent.search import writer as search_writer
from auditagent.search.writer import SessionIndexer
from auditagent.settings import Settings
from auditagent.store import db

SYLLABLES = [a + b for a in "bcdfghjklmnprstvwz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]
# Function words: about half of what people say on a call (none of them is indexed).
COMMON_TEXT = """the a to and i you it is that of for on my can your we this be with have
it's i'm so just yes no okay do not what was will if there me at all would like about get"""
COMMON = COMMON_TEXT.split()


def vocabulary(n: int, rnd: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))))
    return sorted(words)


class Speaker:
    """Utterances: each word a function word with probability 1/2, else drawn from a Zipf
    (s = 1.1) vocabulary, a common model of conversational English."""

    def __init__(self, vocab: list[str], rnd: random.Random) -> None:
        self.vocab = vocab
        self.rnd = rnd
        weights = [1.0 / (i + 1) ** 1.1 for i in range(len(vocab))]
        self.cum = list(itertools.accumulate(weights))

    def word(self) -> str:
        x = self.rnd.random() * self.cum[-1]
        return self.vocab[bisect.bisect_left(self.cum, x)]

    def line(self, n: int) -> str:
        rnd, word = self.rnd, self.word
        out = [rnd.choice(COMMON) if rnd.random() < 0.5 else word() for _ in range(n)]
        return " ".join(out).capitalize() + "."


def conversation(sp: Speaker, t0: datetime, n: int, planted: list[str]) -> list[r.Record]:
    """``n`` records in the mix a voice call produces: per turn the user's utterance, the
    agent's, three turn timings (end of utterance, LLM, TTS), and every fourth turn a tool
    call and its result. About a third of the records carry searchable text."""
    recs: list[r.Record] = []
    turn = 0
    while len(recs) < n:
        at = t0 + timedelta(seconds=len(recs))
        text = sp.line(sp.rnd.randint(4, 16))
        if planted and turn == 1:
            text = f"{text} {' '.join(planted)} {sp.line(4)}"
        recs.append(r.UserUtterance(at=at, text=text, source="stt"))
        recs.append(r.AgentUtterance(at=at, text=sp.line(sp.rnd.randint(8, 30))))
        for source in ("eou_metrics", "llm_metrics", "tts_metrics"):
            recs.append(r.TurnTiming(at=at, source=source, llm_ttft=0.3, tts_ttfb=0.2))
        if turn % 4 == 3:
            args = f'{{"query": "{sp.word()} {sp.word()}"}}'
            recs.append(
                r.ToolCall(at=at, call_id=f"c{turn}", name="lookup_account", arguments=args)
            )
            recs.append(
                r.ToolResult(at=at, call_id=f"c{turn}", name="lookup_account", output=sp.line(8))
            )
        turn += 1
    return recs[:n]


async def record_all(
    settings: Settings,
    kr: LocalKeyring,
    convs: list[list[r.Record]],
    *,
    tenant: str,
    chunk: int = 100,
) -> tuple[float, float]:
    """Record conversations ``chunk`` sessions at a time (interleaved); (wall, CPU) seconds
    until the last flush returned. CPU is this process's: the writer's work, not the server's."""
    t0, c0 = time.perf_counter(), time.process_time()
    async with AuditRecorder(settings, key_provider=kr) as recorder:
        for start in range(0, len(convs), chunk):
            part = convs[start : start + chunk]
            hs = [recorder.open_session(tenant=tenant) for _ in part]
            for i in range(max(len(c) for c in part)):
                for h, c in zip(hs, part, strict=True):
                    if i < len(c):
                        h.add(c[i])
                await asyncio.sleep(0)
            for h in hs:
                h.close(reason="done")
            await recorder.flush()
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    if list(settings.resolved_spool_dir.glob("*.spool")):
        raise SystemExit("the database fell behind and records went to the spool: rerun")
    return elapsed


def _no_filter(self: SessionIndexer) -> bytes | None:
    return None


HANDOVER_TEXTS = 10
"""Texts after which the "every 30 s of a call" variant hands a session's rows over: a voice
call says about this much in 30 s (four turns: the caller's and the agent's utterances, a tool
call and its result), while a bench call of 100 records passes in well under a second."""


def _take_every(texts: int) -> Callable[..., Any]:
    """``SessionIndexer.take`` handing over once ``texts`` texts wait, as the 30 s bound does
    in a real call (the bound itself is left as it is)."""
    take = SessionIndexer.take

    def every(self: SessionIndexer, *, closing: bool, now: float | None = None) -> Any:
        if not closing and sum(map(len, self._texts.values())) >= texts:
            self._since = -math.inf  # waited "long enough": the bound hands them over now
        return take(self, closing=closing, now=now)

    return every


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--writer-records", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--vocab", type=int, default=30_000)
    args = ap.parse_args()
    rnd = random.Random(13)
    name = f"auditagent_search_bench_{os.getpid()}"
    with psycopg.connect(args.admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = db.sqlalchemy_url(f"{base}/{name}")
            # A generous durability window: on a busy box a write may take over a second, and
            # this measures the direct path, not the spool.
            common = {
                "database_url": url,
                "data_dir": Path(tmp),
                "durable_within": 30.0,
                "db_timeout": 30.0,
            }
            on = Settings(**common, search_index=True)  # type: ignore[arg-type]
            off = Settings(**common, search_index=False)  # type: ignore[arg-type]
            db.upgrade(on, url=url)
            kr = LocalKeyring.init(on.resolved_keyring_path)
            vocab = vocabulary(args.vocab, rnd)
            sp = Speaker(vocab, rnd)
            now = datetime.now(timezone.utc)

            # 1. writer cost, on/off alternating
            per = args.events
            wconvs = [conversation(sp, now, per, []) for _ in range(args.writer_records // per)]
            n = sum(len(c) for c in wconvs)
            variants = (
                ("off", off, True, None),
                ("on, no word filter", on, False, None),
                ("on", on, True, None),
                ("on, rows every batch", on, True, 0.0),
                ("on, rows every 30 s of a call", on, True, "texts"),
            )
            cost: dict[str, list[float]] = {label: [] for label, *_ in variants}
            cpu: dict[str, list[float]] = {label: [] for label, *_ in variants}
            built = SessionIndexer._word_filter
            bound = search_writer.HANDOVER_AFTER_S
            take = SessionIndexer.take
            for _ in range(args.rounds):
                for label, s, filtered, handover in variants:
                    # "no word filter" is indexing as it was before word filters: the same
                    # writer with the filter left out, so its share is measured side by side.
                    # "rows every batch" hands a session's rows to every write batch (as before
                    # HANDOVER_AFTER_S): a bench call lasts a few seconds, so "on" hands over
                    # once, at close, where a real call hands over every 30 s as well.
                    SessionIndexer._word_filter = built if filtered else _no_filter  # type: ignore[method-assign]
                    if handover == "texts":
                        SessionIndexer.take = _take_every(HANDOVER_TEXTS)  # type: ignore[method-assign]
                    elif isinstance(handover, float):
                        search_writer.HANDOVER_AFTER_S = handover
                    try:
                        wall, used = await record_all(s, kr, wconvs, tenant=f"writer-{label}")
                    finally:
                        SessionIndexer._word_filter = built  # type: ignore[method-assign]
                        search_writer.HANDOVER_AFTER_S = bound
                        SessionIndexer.take = take  # type: ignore[method-assign]
                    cost[label].append(wall / n * 1e6)
                    cpu[label].append(used / n * 1e6)
            # 2. the searched tenant
            rare = [w for w in vocabulary(args.queries * 3, random.Random(99)) if w not in vocab]
            rare = [f"zq{w}" for w in rare[: args.queries]]
            mids = vocab[2000:10000]
            phrases = [tuple(rnd.sample(mids, 2)) for _ in range(args.queries)]
            plant: dict[int, list[str]] = {}
            for w in rare:
                for i in rnd.sample(range(args.sessions), 5):
                    plant.setdefault(i, []).append(w)
            for a, b in phrases:
                for i in rnd.sample(range(args.sessions), 5):
                    plant.setdefault(i, []).extend([a, b])
            convs = [conversation(sp, now, per, plant.get(i, [])) for i in range(args.sessions)]
            load, _ = await record_all(on, kr, convs, tenant="searched")
            with psycopg.connect(db.libpq_url(url)) as conn:
                rows = conn.execute("SELECT count(*) FROM search_index").fetchone()
                size = conn.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size('search_index'))"
                ).fetchone()
                filters = conn.execute(
                    "SELECT count(word_filter), coalesce(avg(length(word_filter)), 0)"
                    " FROM search_index_sessions"
                ).fetchone()
                conn.execute("ANALYZE")
            # 3. searches
            engine = db.make_engine(on)
            timings: dict[str, list[float]] = {"rare word": [], "two-word phrase": []}
            examined: dict[str, list[int]] = {"rare word": [], "two-word phrase": []}
            found: dict[str, list[int]] = {"rare word": [], "two-word phrase": []}
            screened: dict[str, list[int]] = {"rare word": [], "two-word phrase": []}
            queries = [("rare word", w) for w in rare] + [
                ("two-word phrase", f'"{a} {b}"') for a, b in phrases
            ]
            with engine.connect() as conn:
                for label, q in queries * 2:  # the first pass warms caches
                    t0 = time.perf_counter()
                    page = search(conn, kr, tenant="searched", query=parse_query(q), limit=20)
                    dt = time.perf_counter() - t0
                    timings[label].append(dt * 1000)
                    examined[label].append(page.examined)
                    found[label].append(len(page.items))
                    screened[label].append(page.screened)
                    conn.rollback()
            engine.dispose()
            half = len(queries)
            print(
                f"box: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
            )
            for what, xs in (("wall", cost), ("CPU", cpu)):
                mo = min(xs["off"])
                for label in xs:
                    best, med = min(xs[label]), statistics.median(xs[label])
                    print(
                        f"writer {what} {label}: best of {args.rounds} {best:.1f} µs "
                        f"({(best / mo - 1) * 100:+.1f}% vs off), median {med:.1f} µs "
                        f"({(med / statistics.median(xs['off']) - 1) * 100:+.1f}%); rounds "
                        f"{[round(x, 1) for x in xs[label]]}"
                    )
            print(
                f"searched tenant: {args.sessions} sessions x {per} events recorded in "
                f"{load:.0f} s; search_index rows {rows[0] if rows else '?'}, "
                f"{size[0] if size else '?'}; word filters {filters[0] if filters else '?'}, "
                f"{float(filters[1]) if filters else 0:.0f} bytes each on average"
            )
            for label in timings:
                warm = timings[label][len(timings[label]) // 2 :]
                ex = examined[label][len(examined[label]) // 2 :]
                fo = found[label][len(found[label]) // 2 :]
                sc = screened[label][len(screened[label]) // 2 :]
                print(
                    f"{label}: p50 {pct(warm, 0.5):.1f} ms, p95 {pct(warm, 0.95):.1f} ms, "
                    f"max {max(warm):.1f} ms; candidates decrypted median "
                    f"{statistics.median(ex)}, max {max(ex)}; results median "
                    f"{statistics.median(fo)}, min {min(fo)} (planted in 5); candidates "
                    f"looked at median {statistics.median(sc)}, max {max(sc)}"
                )
            del half
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
