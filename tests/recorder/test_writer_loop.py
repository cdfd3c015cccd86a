"""The writer shares the voice loop: it must give it back while it seals a batch, not after.
(How long each stretch lasts is measured in bench/loop_bench.py, not asserted here.)"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.helpers import read_records


async def test_the_loop_runs_between_slices_of_one_batch(settings: Settings, tenant: str) -> None:
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    batch = settings.batch_size
    async with AuditRecorder(settings, key_provider=keyring) as recorder:
        h = recorder.open_session(tenant=tenant)
        await recorder.flush()
        now = datetime.now(timezone.utc)
        for i in range(4 * batch):  # the voice loop hands over a burst
            h.add(r.UserUtterance(at=now, text=f"line {i} zanzibarquokka " * 8, source="stt"))
        seen: list[int] = []

        async def other_work() -> None:
            # Another task on the same loop: what it sees of the queue while the writer drains.
            queue = recorder._writer.inbox.queue
            while queue:
                seen.append(len(queue))
                await asyncio.sleep(0)

        await asyncio.gather(other_work(), recorder.flush())
        h.close()
    # Before: each batch was taken off the queue in one go, so other tasks only ever saw
    # whole batches missing. Now the writer yields while it seals.
    assert any(n % batch for n in seen), seen[:20]
    got = read_records(settings.database_url or "", h.session_id, keyring)
    assert len(got) == 4 * batch + 2
