"""One simulated call of bench/fleet_bench.py, in its own process: a real text `AgentSession`
(the scripted LLM of tests/support/fakes) attached to its own `AuditRecorder`, a user turn every
`turn_interval` seconds and a tool call every other turn, then close. The fleet's forkserver
imports this module once, so every call process forks with LiveKit and auditagent loaded, as
LiveKit's own job processes do on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import Agent, AgentSession, RunContext, function_tool

from auditagent.metrics import metrics
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.llm import Reply, ScriptedLLM

CANARY = "ocelotharbour"
# Written at close from LiveKit's chat history, not by a hook (LiveKit 1.8.9 emits no event for
# it): its time is the item's creation, so it says nothing about hook-to-durable.
NOT_FROM_A_HOOK = frozenset({"agent_config_updated"})


class CallAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def get_balance(self, context: RunContext, account: str) -> str:
        """Look up an account balance."""
        return f"the balance of {account} is 42"


@dataclass
class CallSpec:
    index: int
    url: str
    data_dir: str
    start_at: float
    seconds: float
    turn_interval: float
    nice: int = 0


@dataclass
class CallResult:
    index: int
    session_id: str = ""
    turns: list[str] = field(default_factory=list)
    tool_turns: int = 0
    latencies: list[float] = field(default_factory=list)
    spooled: float = 0.0
    gaps: float = 0.0
    cpu_s: float = 0.0
    pss_mb: float = 0.0
    private_mb: float = 0.0
    error: str = ""


class Durability:
    """When each record became durable: the commit of the direct write that carried it, or the
    fsync of the spool batch it went to, whichever came first; in seconds after its hook.
    Wraps ``write_batch`` wherever the recorder looks it up and ``Spool.append_encoded`` (the
    real ones still do the work). Replays are left out: their records were durable already."""

    def __init__(self) -> None:
        self.direct: dict[tuple[uuid.UUID, int], float] = {}
        self.spooled: dict[tuple[uuid.UUID, int], float] = {}

    def _note(self, into: dict[tuple[uuid.UUID, int], float], envelopes: Any) -> None:
        now = time.time()
        for e in envelopes:
            if e.kind not in NOT_FROM_A_HOOK:
                into.setdefault((e.session_id, e.seq), now - e.at.timestamp())

    def install(self) -> None:
        from auditagent.integrity.envelope import Envelope
        from auditagent.recorder import ingest, spool

        write_batch = ingest.write_batch

        async def timed_write(conn: Any, **kw: Any) -> Any:
            closed = await write_batch(conn, **kw)
            if not kw.get("idempotent"):
                self._note(self.direct, kw.get("envelopes", ()))
            return closed

        for mod in list(sys.modules.values()):
            if getattr(mod, "write_batch", None) is write_batch:
                mod.write_batch = timed_write  # type: ignore[attr-defined]

        append = spool.Spool.append_encoded

        def timed_append(sp: spool.Spool, data: bytes) -> None:
            append(sp, data)  # fsynced when it returns
            frames = spool.FrameReader(data)
            self._note(
                self.spooled,
                [Envelope.from_bytes(p) for tag, p in frames if tag == spool.TAG_ENVELOPE],
            )

        spool.Spool.append_encoded = timed_append  # type: ignore[method-assign]

    def latencies(self) -> tuple[list[float], int]:
        """Per record, the earlier of the two; and how many records went to the spool."""
        out = dict(self.direct)
        for k, v in self.spooled.items():
            out[k] = min(v, out.get(k, v))
        return list(out.values()), len(self.spooled)


def _memory_mb() -> tuple[float, float]:
    """(PSS, private) of this process: what it adds to the box beyond the forkserver's pages."""
    pss = private = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key == "Pss":
                pss = int(rest.split()[0]) / 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                private += int(rest.split()[0]) / 1024
    return pss, private


async def _call(spec: CallSpec, out: CallResult) -> None:
    durability = Durability()
    durability.install()
    replies: list[Reply] = []
    for i in range(int(spec.seconds / spec.turn_interval) + 20):
        if i % 2 == 0:
            replies.append(Reply(tool_calls=[("get_balance", f'{{"account": "A-{i}"}}')]))
        replies.append(Reply(text=f"Reply {i}: your balance is 42.", ttft=0.05, chunk_delay=0.01))
    settings = Settings(database_url=spec.url, data_dir=Path(spec.data_dir))
    await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=ScriptedLLM(replies), vad=None)
        rec = recorder.attach(
            session, tenant=f"fleet-{spec.index % 10}", participant=f"+1555{spec.index:07d}"
        )
        out.session_id = str(rec.session_id)
        await session.start(CallAgent())
        end = time.monotonic() + spec.seconds
        i = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            text = f"turn {i} {CANARY}"
            await session.run(user_input=text)
            out.turns.append(text)
            out.tool_turns += i % 2 == 0
            i += 1
            await asyncio.sleep(max(0.0, spec.turn_interval - (time.monotonic() - t0)))
        out.pss_mb, out.private_mb = _memory_mb()
        await session.aclose()
        await recorder.flush()
    out.latencies, spooled = durability.latencies()
    out.spooled = float(spooled)
    out.gaps = metrics().gaps._value.get()


def run_call(spec: CallSpec, results: Any) -> None:
    out = CallResult(index=spec.index)
    if spec.nice:
        os.nice(spec.nice)
    try:
        asyncio.run(_call(spec, out))
    except BaseException as exc:  # reported, not raised: the parent counts failed calls
        out.error = type(exc).__name__
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.cpu_s = ru.ru_utime + ru.ru_stime
    results.put(out)
