"""Attaching the recorder to a session costs the agent's event loop no plugin imports: the Gemini
check looks the google plugin up in ``sys.modules`` instead of importing it (an import of ~440
modules, ~0.9 s on the loop at the start of every call whose agent does not use Gemini)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from auditagent.keys import LocalKeyring
from auditagent.settings import Settings

PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from livekit.agents import Agent, AgentSession
    from auditagent.recorder import AuditRecorder
    from auditagent.settings import Settings
    from tests.support.fakes.llm import Reply, ScriptedLLM

    async def main():
        settings = Settings(database_url=sys.argv[1], data_dir=Path(sys.argv[2]))
        async with AuditRecorder(settings) as recorder:
            session = AgentSession(llm=ScriptedLLM([Reply(text="Hello.")]), vad=None)
            before = set(sys.modules)
            recorder.attach(session, tenant="t-imports")
            await session.start(Agent(instructions="x"))
            await session.run(user_input="hi")
            await session.aclose()
            print(sorted(m for m in set(sys.modules) - before if m.startswith("livekit.plugins")))

    asyncio.run(main())
    """
)


def test_attach_to_a_text_session_imports_no_plugin(settings: Settings) -> None:
    LocalKeyring.init(settings.resolved_keyring_path)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, settings.database_url or "", str(settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
