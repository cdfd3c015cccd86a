"""Checking one session's chain: the one verifier every caller uses (the API's reads and
verify route, bundles, the CLI, checkpoints), and holding its result to the commitments kept
outside the session's rows. The format itself is :mod:`auditagent.integrity.chain`.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditagent.integrity.chain import GENESIS, ChainRecord, link_fast
from auditagent.integrity.encoding import lp, uuid_field

__all__ = ["ChainVerifier", "VerifyResult", "hold_to_commitments", "verify"]


@dataclass
class VerifyResult:
    """Outcome of a chain check.

    ``events`` counts the records that verified before the first failure (all of them when
    ``ok``); ``head_hash`` is the hash of the last of those (``GENESIS`` when none did).
    """

    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: bytes


_MALFORMED = (ValueError, TypeError, AttributeError, struct.error)


class ChainVerifier:
    """Streaming check of one session's chain: feed records in ascending ``seq`` with
    :meth:`add` (fields) or :meth:`add_row` (an object with the event columns), then read
    :meth:`result`.

    ``expected_count`` / ``expected_head`` are a checkpoint: at least that many records must
    exist, and the record at ``seq == expected_count - 1`` must have that hash. Records
    appended after a checkpoint are allowed, because one can be taken of a live session.
    ``expected_head`` alone is compared with the final head. ``checkpoint`` is a second
    commitment, ``(count, head)`` from the session's signed checkpoint, that :meth:`finish`
    holds the result to (:func:`hold_to_commitments`). After the first bad record every later
    one is ignored (``add`` returns False).
    """

    __slots__ = (
        "_checkpoint",
        "_count",
        "_exp_count",
        "_exp_head",
        "_failure",
        "_head",
        "_head_at_expected",
        "_keep",
        "_lps",
        "_prev",
        "_tenant",
        "kept",
        "session_id",
    )

    def __init__(
        self,
        session_id: uuid.UUID | None = None,
        *,
        expected_count: int | None = None,
        expected_head: bytes | None = None,
        checkpoint: tuple[int, bytes] | None = None,
    ) -> None:
        self.session_id = session_id
        self._head = uuid_field(session_id) if session_id is not None else b""
        self._exp_count = expected_count
        self._exp_head = expected_head
        self._checkpoint = checkpoint
        self._keep = checkpoint[0] if checkpoint is not None else -1
        self.kept: bytes | None = None
        """The hash of record ``checkpoint[0] - 1``, once it verified."""
        self._prev = GENESIS
        self._count = 0
        self._head_at_expected: bytes | None = GENESIS if expected_count == 0 else None
        self._tenant: str | None = None
        self._failure: VerifyResult | None = None
        # str -> its length-prefixed encoding: a session uses a dozen kinds and one key id
        self._lps: dict[str, bytes] = {}

    @classmethod
    def for_session(
        cls, session: Any, *, checkpoint: tuple[int, bytes] | None = None
    ) -> ChainVerifier:
        """The verifier for a sessions row: its ``(event_count, head_hash)`` as the first
        commitment (what catches a deleted last record: the remaining chain would still link),
        ``checkpoint`` (from its signed checkpoint, outside the database) as the second."""
        expected_count = int(session.event_count or 0)
        exp_count = expected_count if expected_count > 0 else None
        exp_head = (
            bytes(session.head_hash)
            if exp_count is not None and session.head_hash is not None
            else None
        )
        return cls(
            session.id, expected_count=exp_count, expected_head=exp_head, checkpoint=checkpoint
        )

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def _bad(self, seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False, events=self._count, first_bad_seq=seq, reason=reason, head_hash=self._prev
        )

    def _lp(self, value: str) -> bytes:
        out = self._lps.get(value)
        if out is None:
            if len(self._lps) >= 256:  # only a hostile table has this many distinct values
                self._lps.clear()
            out = self._lps[value] = lp(value.encode())
        return out

    def _out_of_order(self, seq: int) -> bool:
        count = self._count
        if seq > count:
            self._failure = self._bad(count, f"missing seq {count}")
        else:
            self._failure = self._bad(
                seq, f"seq {seq} out of order or duplicated (expected {count})"
            )
        return False

    def add(
        self,
        seq: int,
        tenant: str,
        kind: str,
        at: datetime,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        prev_hash: bytes,
        digest: bytes,
    ) -> bool:
        """Check the next record of this session (fields in ``reader.EVENT_TUPLE_COLUMNS``
        order, bytes as ``bytes``); False once the chain has failed."""
        if self._failure is not None:
            return False
        count = self._count
        if seq != count:
            return self._out_of_order(seq)
        if self._tenant is None:
            self._tenant = tenant
        elif tenant != self._tenant:
            self._failure = self._bad(seq, "record belongs to another session")
            return False
        try:
            if prev_hash != self._prev:
                self._failure = self._bad(seq, "prev_hash mismatch")
                return False
            lps = self._lps
            kind_lp = lps.get(kind) or self._lp(kind)
            key_lp = lps.get(key_id) or self._lp(key_id)
            computed = link_fast(
                prev_hash, self._head, seq, kind_lp, key_lp, tenant, at, nonce, ciphertext
            )
        except _MALFORMED as exc:
            # A malformed row is a verification failure to report, not a crash mid-audit.
            self._failure = self._bad(seq, f"malformed record: {type(exc).__name__}")
            return False
        if computed != digest:
            self._failure = self._bad(seq, "hash mismatch (record altered)")
            return False
        self._prev = computed
        self._count = count = count + 1
        if count == self._exp_count:
            self._head_at_expected = computed
        if count == self._keep:
            self.kept = computed
        return True

    def add_row(self, row: Any) -> bool:
        """:meth:`add` for an object with the event columns (a :class:`ChainRecord`); the
        first row sets the session when none was given, and a row of another session fails."""
        if self._failure is not None:
            return False
        try:
            seq, session_id = row.seq, row.session_id
            if seq != self._count:
                return self._out_of_order(seq)
            if self.session_id is None:
                self.session_id = session_id
                self._head = uuid_field(session_id)
            elif session_id != self.session_id:
                self._failure = self._bad(seq, "record belongs to another session")
                return False
            fields = (
                row.tenant,
                row.kind,
                row.at,
                row.key_id,
                bytes(row.nonce),
                bytes(row.ciphertext),
                bytes(row.prev_hash),
                bytes(row.hash),
            )
        except _MALFORMED as exc:
            self._failure = self._bad(row.seq, f"malformed record: {type(exc).__name__}")
            return False
        return self.add(seq, *fields)

    def result(self) -> VerifyResult:
        """The outcome so far: the first failure, or the records held to the checkpoint."""
        if self._failure is not None:
            return self._failure
        count, exp_count, exp_head = self._count, self._exp_count, self._exp_head
        if exp_count is not None:
            if count < exp_count:
                return self._bad(count, f"chain truncated: {count} events, expected {exp_count}")
            if exp_head is not None and self._head_at_expected != exp_head:
                return self._bad(None, "head hash mismatch at checkpoint")
        elif exp_head is not None and self._prev != exp_head:
            return self._bad(None, "head hash mismatch (chain truncated or rewritten)")
        return VerifyResult(
            ok=True, events=count, first_bad_seq=None, reason=None, head_hash=self._prev
        )

    def finish(self, *, status: str | None, problem: str | None = None) -> VerifyResult:
        """:meth:`result` held to the session's ``status`` and signed checkpoint (see
        :func:`hold_to_commitments`)."""
        return hold_to_commitments(
            self.result(),
            status=status,
            checkpoint=self._checkpoint,
            head_at_checkpoint=self.kept,
            problem=problem,
        )


def verify(
    rows: Iterable[ChainRecord],
    *,
    expected_count: int | None = None,
    expected_head: bytes | None = None,
) -> VerifyResult:
    """Check one session's chain, streaming ``rows`` in the order given (ascending ``seq``);
    see :class:`ChainVerifier` for ``expected_count`` / ``expected_head``."""
    verifier = ChainVerifier(expected_count=expected_count, expected_head=expected_head)
    add = verifier.add_row
    for row in rows:
        if not add(row):
            break
    return verifier.result()


def hold_to_commitments(
    result: VerifyResult,
    *,
    status: str | None,
    checkpoint: tuple[int, bytes] | None = None,
    head_at_checkpoint: bytes | None = None,
    problem: str | None = None,
) -> VerifyResult:
    """Hold a session's verified chain to what is known about it from outside its rows.

    * A session still ``open`` or ``closed`` (not erased by retention) always has records:
      every recording starts with ``opened``, so an empty chain means its events were deleted.
    * ``checkpoint`` is ``(count, head)`` from the session's signed checkpoint (kept outside
      the database): the chain must have at least ``count`` records and ``head_at_checkpoint``
      (the hash of record ``count - 1``, collected while verifying) must equal ``head``.
    * ``problem`` is a reason to fail already found (e.g. a checkpoint that does not verify).

    The first failure of ``result`` itself is kept as it is.
    """
    if not result.ok:
        return result

    def bad(seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False,
            events=result.events,
            first_bad_seq=seq,
            reason=reason,
            head_hash=result.head_hash,
        )

    if problem is not None:
        return bad(None, problem)
    if result.events == 0 and status in ("open", "closed"):
        return bad(0, "no records: every session starts with an `opened` record (deleted?)")
    if checkpoint is not None:
        count, head = checkpoint
        if result.events < count:
            return bad(
                result.events,
                f"chain truncated: {result.events} events, its signed checkpoint has {count}",
            )
        if count > 0 and head_at_checkpoint != head:
            return bad(None, "head hash differs from its signed checkpoint (chain rewritten)")
    return result
