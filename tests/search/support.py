"""Sessions for the search tests, recorded by the real recorder."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings

Line = tuple[str, str]
"""``(role, text)`` with role user, agent or tool (a failed call of the tool named text)."""


def record(
    settings: Settings,
    keyring: LocalKeyring,
    *,
    tenant: str,
    lines: list[Line],
    participant: str = "+15550100",
) -> uuid.UUID:
    async def go() -> uuid.UUID:
        async with AuditRecorder(settings, key_provider=keyring) as recorder:
            t0 = datetime.now(timezone.utc)
            rec = recorder.open_session(tenant=tenant, participant=participant)
            for i, (role, text) in enumerate(lines):
                at = t0 + timedelta(seconds=i + 1)
                if role == "user":
                    rec.add(r.UserUtterance(at=at, text=text, source="stt"))
                elif role == "agent":
                    rec.add(r.AgentUtterance(at=at, text=text))
                else:
                    rec.add(r.ToolCall(at=at, call_id=f"c{i}", name=text, arguments="{}"))
                    rec.add(
                        r.ToolResult(
                            at=at, call_id=f"c{i}", name=text, is_error=True, exception="declined"
                        )
                    )
            rec.add(r.Closed(at=t0 + timedelta(seconds=len(lines) + 1), reason="done"))
            await recorder.flush()
            return rec.session_id

    return asyncio.run(go())
