"""The review UI's test world: the seed systems and a few hand-made conversations recorded by
the real recorder into a database of their own, the real service under uvicorn on a local
port, and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from auditagent_api import create_app
from sqlalchemy import Engine

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from auditagent_demo.server import SimulatorServer
from auditagent_demo.systems import SEED_SYSTEMS, run_seed_system
from tests.support.netproxy import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AUDITAGENT_TEST_CHROMIUM") or shutil.which("chromium") or ""
CANARY_TOOL_ERROR = "Zebrafinch booking desk unreachable"
CANARY_USER = "zebrafinch"
REALTIME_PACE = 8.0


def require_browser() -> str:
    if CHROMIUM and Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests: .ci/run installs Debian's chromium")
    pytest.skip("no chromium on this machine: apt-get install chromium")


def screenshots_dir(tmp_root: Path) -> Path:
    """Where page pictures go: docs/screenshots when AUDITAGENT_TEST_UPDATE_SCREENSHOTS=1 (to
    commit them), else a test artifact directory that is printed at the end."""
    if os.environ.get("AUDITAGENT_TEST_UPDATE_SCREENSHOTS") == "1":
        out = REPO / "docs" / "screenshots"
    else:
        out = Path(os.environ.get("AUDITAGENT_TEST_SCREENSHOTS", str(tmp_root / "screenshots")))
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class World:
    settings: Settings
    keyring: LocalKeyring
    tenant: str
    other_tenant: str
    seeds: dict[str, uuid.UUID]
    seed_errors: dict[str, str]
    handmade: uuid.UUID
    """tool error, pause, gap, handoff, interrupted reply; its recording notice heard in full"""
    tamper_target: uuid.UUID
    """the same conversation; its recording notice spoken over, never heard in full"""
    other_session: uuid.UUID
    tokens: dict[str, str] = field(default_factory=dict)


async def _handmade(
    recorder: AuditRecorder, *, tenant: str, agent: str, notice: bool | None = None
) -> uuid.UUID:
    """A conversation with everything the seed scenario does not have: a tool error, a pause,
    a gap, a handoff, an error, typed input; and, unless ``notice`` is None, the record
    ``attach(notice=...)`` seals: heard in full (True) or spoken over (False)."""
    t0 = datetime.now(timezone.utc)

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    participant = f"+1555{uuid.uuid4().int % 10**7:07d}"
    rec = recorder.open_session(
        tenant=tenant,
        participant=participant,
        labels={"agent": agent},
        opened=r.Opened(
            at=t0,
            tenant=tenant,
            participant=participant,
            agent_name=agent,
            architecture="pipeline",
            stt=r.ModelInfo(model="nova-3", provider="deepgram"),
            llm=r.ModelInfo(model="gpt-4o", provider="openai"),
            tts=r.ModelInfo(model="sonic-3", provider="cartesia"),
            labels={"agent": agent},
        ),
    )
    if notice is not None:
        rec.add(
            r.RecordingNotice(
                at=at(0.6),
                text_sha256=hashlib.sha256(b"This call is recorded.").hexdigest(),
                started_at=at(0.1),
                ended_at=at(0.6),
                completed=notice,
                spoken_over=not notice,
            )
        )
    rec.add(
        r.UserUtterance(
            at=at(1), text=f"reschedule my {CANARY_USER} visit", source="stt", item_id="u1"
        )
    )
    rec.add(
        r.TurnTiming(
            at=at(1.1),
            role="user",
            item_id="u1",
            end_of_utterance_delay=0.42,
            transcription_delay=0.2,
            source="chat_message",
        )
    )
    rec.add(
        r.ToolCall(
            at=at(1.5),
            call_id="c1",
            name="reschedule",
            arguments='{"reference": "AB123", "day": "friday"}',
        )
    )
    rec.add(
        r.ToolResult(
            at=at(2.4),
            call_id="c1",
            name="reschedule",
            output="",
            is_error=True,
            exception=CANARY_TOOL_ERROR,
        )
    )
    rec.add(
        r.AgentUtterance(
            at=at(3),
            text="I could not reach the booking desk,",
            generated_text="I could not reach the booking desk, please try again in a few minutes.",
            interrupted=True,
            item_id="a1",
        )
    )
    rec.add(
        r.TurnTiming(
            at=at(3.1),
            role="assistant",
            item_id="a1",
            llm_ttft=0.61,
            tts_ttfb=0.35,
            e2e_latency=1.41,
            source="chat_message",
        )
    )
    # what SessionRecording.pause()/resume() record, placed at a chosen time
    rec.add(r.Notice(at=at(5), code="recording_paused", message="caller reads out a card number"))
    rec.add(
        r.Notice(
            at=at(6), code="recording_resumed", message="2 events were not recorded while paused"
        )
    )
    rec.add(r.Gap(at=at(7), count=3, reason="spool full"))
    rec.add(r.Handoff(at=at(8), old_agent_name=agent, new_agent_name="billing"))
    rec.add(r.ErrorRecord(at=at(8.5), source="TTS", message="tts timeout", recoverable=True))
    rec.add(
        r.UserUtterance(
            at=at(9), text="thanks, bye", source="text", input_mode="text", item_id="u2"
        )
    )
    rec.add(r.AgentUtterance(at=at(10), text="Goodbye!", item_id="a2"))
    rec.add(
        r.TurnTiming(
            at=at(10.1),
            role="assistant",
            item_id="a2",
            llm_ttft=0.22,
            tts_ttfb=0.12,
            source="chat_message",
        )
    )
    rec.add(r.Closed(at=at(11), reason="participant_disconnected"))
    return rec.session_id


def record_world(settings: Settings, keyring: LocalKeyring) -> World:
    tenant = f"clinic-{uuid.uuid4().hex[:6]}"
    other = f"other-{uuid.uuid4().hex[:6]}"

    async def go() -> World:
        async with (
            SimulatorServer(realtime_pace=REALTIME_PACE) as sim,
            AuditRecorder(settings, key_provider=keyring) as recorder,
        ):

            async def seed(name: str) -> uuid.UUID | str:
                try:
                    rec = await run_seed_system(
                        name,
                        sim=sim,
                        recorder=recorder,
                        tenant=tenant,
                        participant=f"+1555{uuid.uuid4().int % 10**7:07d}",
                        timeout=90,
                    )
                except Exception as exc:
                    return f"{type(exc).__name__}: {exc}"
                return rec.session_id

            results = await asyncio.gather(*(seed(n) for n in SEED_SYSTEMS))
            handmade = await _handmade(recorder, tenant=tenant, agent="front-desk", notice=True)
            target = await _handmade(recorder, tenant=tenant, agent="tamper-target", notice=False)
            other_sid = await _handmade(recorder, tenant=other, agent="elsewhere")
            await recorder.flush(timeout=30)
        seeds = {
            n: v for n, v in zip(SEED_SYSTEMS, results, strict=True) if isinstance(v, uuid.UUID)
        }
        errors = {n: v for n, v in zip(SEED_SYSTEMS, results, strict=True) if isinstance(v, str)}
        return World(settings, keyring, tenant, other, seeds, errors, handmade, target, other_sid)

    return asyncio.run(go())


@contextmanager
def serve(settings: Settings, engine: Engine, keyring: LocalKeyring) -> Iterator[tuple[str, Any]]:
    """The service under uvicorn in a thread; yields its base URL and the app."""
    app = create_app(settings, engine=engine, key_provider=keyring)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sign_in(page: Any, base: str, token: str, *, reason: str | None = None) -> None:
    page.goto(f"{base}/ui/sessions")
    assert "/ui/login" in page.url
    page.get_by_label("Token").fill(token)
    if reason:
        page.get_by_label(re.compile("^Reason for access")).fill(reason)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/sessions")


def seed(world: World, name: str) -> uuid.UUID:
    if name not in world.seeds:
        raise AssertionError(f"{name} did not play its scenario: {world.seed_errors.get(name)}")
    return world.seeds[name]


def shoot(page: Any, shots: Path, name: str, *, width: int = 1400, full: bool = True) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.screenshot(path=str(shots / f"{name}.png"), full_page=full)
    # readable at this width: nothing wider than the window, so no sideways scrolling
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} at {width}px is {overflow}px wider than the window"
