"""Advisory lock keys the retention path shares, and the database's own clock.

One lock (pg_advisory_xact_lock) serialises the deletion-record chain, one orders hold creation
against shredding so a hold placed "at the same time" wins, one serialises the change log. Runs
hold a session-level lock (class, hashtext(run id)) for their lifetime, so the next run can tell
a dead one (its lock is free) from a live one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Connection, DateTime, Engine, bindparam, func, select

LOCK_DELETION_CHAIN = 0x6175_6469_7464_656C  # "auditdel"
LOCK_HOLDS = 0x6175_6469_7468_6F6C  # "audithol"
LOCK_CHANGES = 0x6175_6469_7463_6867  # "auditchg"
RUN_LOCK_CLASS = 0x6175_6472  # "audr"

# Built once: a Core statement memoizes its cache key, so executing a prebuilt one skips
# rebuilding and re-keying it (a retention run takes these locks twice per session).
_XACT_LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_CLOCK = select(func.clock_timestamp(type_=DateTime(timezone=True)))


def xact_lock(conn: Connection, key: int) -> None:
    """Take the advisory lock ``key`` until the transaction ends."""
    conn.execute(_XACT_LOCK, {"key": key})


def clock(conn: Connection) -> datetime:
    """The database server's own clock (``clock_timestamp()``, not the transaction's start)."""
    value: datetime = conn.execute(_CLOCK).scalar_one()
    return value


def db_clock(engine: Engine) -> datetime:
    """The database server's own clock, on a connection of its own."""
    with engine.connect() as conn:
        return clock(conn)
