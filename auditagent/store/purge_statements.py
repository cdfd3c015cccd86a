"""The statements a retention run executes for every session (store/purges.py,
store/purge_rows.py), built once.

A prebuilt Core statement memoizes its cache key, so each call binds values instead of
rebuilding and re-keying the expression (a retention run executes these a dozen times per
session).
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, select, text, update

from .models import AudioChunkRow, DataKeyRow, EventRow, SessionRow

_S = SessionRow.__table__
_E = EventRow.__table__
_A = AudioChunkRow.__table__

# The policy in force for session ``s``: the newest version for its tenant and agent label,
# else for its tenant, skipping removed ones (a removed agent policy falls back to the tenant
# one). The label is ``labels->>'agent'``, else agent_name.
_POLICY_JOIN = """LEFT JOIN LATERAL (
  SELECT p.id, p.version, p.agent, p.keep_years, p.keep_months, p.keep_days FROM (
    (SELECT q.*, 0 AS rank FROM retention_policies q WHERE q.tenant = s.tenant
       AND q.agent = COALESCE(s.labels->>'agent', s.agent_name)
       ORDER BY q.version DESC LIMIT 1)
    UNION ALL
    (SELECT q.*, 1 AS rank FROM retention_policies q WHERE q.tenant = s.tenant
       AND q.agent IS NULL ORDER BY q.version DESC LIMIT 1)
  ) p WHERE NOT p.deleted ORDER BY p.rank LIMIT 1) pol ON true"""

# End time plus the policy (or the default), never less than end time plus the floor: the
# floor holds at run time, for old policies and the default too. Calendar arithmetic in UTC.
_EXPIRES = """GREATEST(
  ((s.ended_at AT TIME ZONE 'UTC') + make_interval(
     years => COALESCE(pol.keep_years, :dy), months => COALESCE(pol.keep_months, :dm),
     days => COALESCE(pol.keep_days, :dd))) AT TIME ZONE 'UTC',
  ((s.ended_at AT TIME ZONE 'UTC')
     + make_interval(years => :fy, months => :fm, days => :fd)) AT TIME ZONE 'UTC')"""


# An unreleased hold covers session ``s`` when it names the session, its participant's blind
# index, or its whole tenant.
HELD_SQL = """EXISTS (
  SELECT 1 FROM legal_holds h
  WHERE h.released_at IS NULL AND h.tenant = s.tenant AND (
    h.scope = 'tenant'
    OR (h.scope = 'session' AND h.session_id = s.id)
    OR (h.scope = 'participant' AND s.participant_index IS NOT NULL
        AND h.participant_index = s.participant_index)))"""

_SID = bindparam("sid", type_=_E.c.session_id.type)
_AT = bindparam("at", type_=_S.c.updated_at.type)
# The session's start: the partition key of events, audio chunks and search index rows. Given
# with the session id, it lets the planner prune to the one partition that holds the session
# instead of probing every month's index (a dozen statements per session, each over every
# partition of three tables, is what made the per-session purge slower after migration 0016).
_STARTED = bindparam("started", type_=_E.c.session_started_at.type)

# A session's row as the shred sees it: what decides expiry, and whether a hold covers it
# (one session here; a month's sessions at once in store/month_drop.py).
SHRED_SELECT = (
    "SELECT s.id, s.tenant, s.status, s.ended_at, s.started_at, "
    "COALESCE(s.labels->>'agent', s.agent_name) AS agent_label, "
    "pol.id AS policy_id, pol.version AS policy_version, pol.agent AS policy_agent, "
    "pol.keep_years, pol.keep_months, pol.keep_days, "
    f"CASE WHEN s.ended_at IS NULL THEN NULL ELSE {_EXPIRES} END AS expires_at, "
    f"{HELD_SQL} AS held FROM sessions s {_POLICY_JOIN}"
)
_SHRED_BASIS = text(f"{SHRED_SELECT} WHERE s.id = :id FOR UPDATE OF s")
# One pass over the session's rows for both: how many, and when the chain says it closed.
_EVENT_STATS = select(
    func.count().label("n"),
    func.min(_E.c.at).filter(_E.c.kind == "closed").label("closed_at"),
).where(_E.c.session_id == _SID, _E.c.session_started_at == _STARTED)
_LAST_EVENT = (
    select(_E.c.seq, _E.c.hash)
    .where(_E.c.session_id == _SID, _E.c.session_started_at == _STARTED)
    .order_by(_E.c.seq.desc())
    .limit(1)
)
_SHRED_KEY = (
    update(DataKeyRow)
    .where(DataKeyRow.session_id == _SID, DataKeyRow.wrapped.is_not(None))
    .values(wrapped=None, shredded_at=_AT)
)
_MARK_SHREDDED = (
    update(SessionRow)
    .where(_S.c.id == _SID)
    .values(
        status="shredded",
        updated_at=_AT,
        ended_at=func.coalesce(_S.c.ended_at, _AT),
        close_reason=func.coalesce(
            _S.c.close_reason, bindparam("reason", type_=_S.c.close_reason.type)
        ),
    )
)
_STATUS_FOR_SHARE = (
    select(_S.c.status, _S.c.started_at).where(_S.c.id == _SID).with_for_update(read=True)
)
# Both settings in one round trip (no parameters, so the driver sends it as one simple query).
_PURGE_SETTINGS = text(
    "SET LOCAL synchronous_commit = off; SET LOCAL auditagent.allow_purge = 'on'"
)
_ALLOW_PURGE = text("SET LOCAL auditagent.allow_purge = 'on'")
# An alias, so the subquery is not correlated to the DELETE's own ``events`` row.
_FIRST = _E.alias("first")
_DELETE_BATCH = delete(EventRow).where(
    _E.c.session_id == _SID,
    _E.c.session_started_at == _STARTED,
    _E.c.seq
    < select(func.min(_FIRST.c.seq))
    .where(_FIRST.c.session_id == _SID, _FIRST.c.session_started_at == _STARTED)
    .scalar_subquery()
    + bindparam("n", type_=_E.c.seq.type),
)
# Where the caller has only the id: the start from the session's row (pruned at run time).
_STARTED_OF = select(_S.c.started_at).where(_S.c.id == _SID).scalar_subquery()
_EVENTS_LEFT = select(
    select(func.count())
    .where(_E.c.session_id == _SID, _E.c.session_started_at == _STARTED_OF)
    .scalar_subquery()
    + select(func.count())
    .where(_A.c.session_id == _SID, _A.c.session_started_at == _STARTED_OF)
    .scalar_subquery()
)
_DELETE_AUDIO = delete(AudioChunkRow).where(
    _A.c.session_id == _SID, _A.c.session_started_at == _STARTED
)
# What of a dropped month a default partition kept (store/month_drop.py): by the month's range
# of the partition key, which, the month's own partitions being gone, prunes to the default.
_DELETE_AUDIO_IN = text(
    "DELETE FROM audio_chunks WHERE session_started_at >= :s AND session_started_at < :e"
)
_DELETE_SEARCH_IN = text(
    "DELETE FROM search_index WHERE session_started_at >= :s AND session_started_at < :e"
)
_ALLOW_MONTH = text("SET LOCAL auditagent.allow_purge = 'month'")
_MARK_PURGED = (
    update(SessionRow)
    .where(
        _S.c.id == _SID,
        _S.c.status == "shredded",
        ~select(_E.c.seq)
        .where(_E.c.session_id == _SID, _E.c.session_started_at == _S.c.started_at)
        .exists(),
        ~select(_A.c.chunk_index)
        .where(_A.c.session_id == _SID, _A.c.session_started_at == _S.c.started_at)
        .exists(),
    )
    .values(status="purged", participant_index=None, updated_at=func.clock_timestamp())
)
