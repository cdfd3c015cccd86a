"""Adopting what predates signed retention (migration 0017)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ..integrity.signed_logs import verify_changes, verify_deletion_chain
from ..keys import KeyProvider
from ..settings import Settings
from ..store import changes, deletions
from ..store import holds as hold_store
from ..store import policies as policy_store
from ..store.holds import Hold
from ..store.policies import Policy
from .guards import RetentionRefused, load_keys, note_changes, signer_for

if TYPE_CHECKING:
    from ..integrity.checkpoints import CheckpointSink


@dataclass
class Adopted:
    policies: list[Policy] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    deletion_records: int = 0

    @property
    def empty(self) -> bool:
        return not self.policies and not self.holds and not self.deletion_records


def adopt_legacy(
    engine: Engine,
    settings: Settings,
    *,
    adopted_by: str,
    key_provider: KeyProvider | None = None,
    dry_run: bool = False,
    sink: CheckpointSink | None = None,
) -> Adopted:
    """After upgrading to migration 0017: sign into the change log the policies and holds that
    have no entry there, and vouch for the unsigned deletion records written before it (a
    prefix of the chain), so verification and runs accept them. An operator's deliberate act
    with the checkpoint key: run it once, right after the upgrade, and read what it lists —
    anything it adopts is trusted from then on."""
    keys = key_provider or load_keys(settings)
    signer = signer_for(keys)
    log_ = verify_changes(engine, public_key=signer.public, compare_tables=False)
    if not log_.log_ok:
        raise RetentionRefused(
            f"the change log does not verify: {log_.problems[0]}",
            fix="nothing was adopted; investigate with `auditagent verify --all --checkpoints DIR`",
        )
    signed_policies = log_.policy_versions()
    signed_holds = {c.subject for c in log_.changes if c.action in ("hold.create", "hold.adopt")}
    out = Adopted(
        policies=[p for p in policy_store.all_policy_rows(engine) if p.id not in signed_policies],
        holds=[h for h in hold_store.all_hold_rows(engine) if h.id not in signed_holds],
    )
    prefix = deletions.unsigned_deletion_prefix(engine)
    already = log_.adopted_deletions
    if prefix is not None and (already is None or already[0] < prefix[0]):
        chain = verify_deletion_chain(engine)
        if not chain.ok:
            raise RetentionRefused(
                f"the deletion records do not verify: {chain.reason} at seq {chain.first_bad_seq}",
                fix="nothing was adopted; investigate before vouching for them",
            )
        out.deletion_records = prefix[0]
    if dry_run or out.empty:
        return out
    floor = settings.retention_floor.to_json()
    for p in sorted(out.policies, key=lambda p: (p.tenant, p.agent or "", p.version)):
        changes.append_change(
            engine,
            signer,
            action="policy.adopt",
            tenant=p.tenant,
            subject=p.id,
            actor=adopted_by,
            body={**p.body(), "floor": floor},
        )
    for h in sorted(out.holds, key=lambda h: (h.created_at, str(h.id))):
        changes.append_change(
            engine,
            signer,
            action="hold.adopt",
            tenant=h.tenant,
            subject=h.id,
            actor=adopted_by,
            body=h.body(),
        )
        if h.released_at is not None:
            changes.append_change(
                engine,
                signer,
                action="hold.release",
                tenant=h.tenant,
                subject=h.id,
                actor=adopted_by,
                body=h.release_body(),
            )
    if out.deletion_records:
        assert prefix is not None
        changes.append_change(
            engine,
            signer,
            action=changes.ADOPT_DELETIONS,
            tenant="",
            subject=uuid.UUID(int=0),
            actor=adopted_by,
            body={"count": prefix[0], "head": prefix[1].hex()},
        )
    note_changes(engine, keys, sink)
    return out
