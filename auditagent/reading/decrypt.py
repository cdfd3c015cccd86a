"""Decrypt-on-read: unwrap a session's data key, open its sealed records, and recompute its
chain in the same pass.

Callers must have written the access-log row before calling anything here that returns
plaintext; this module does not know who is asking.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from auditagent import records
from auditagent.errors import AuditagentError, IntegrityError, KeyringError
from auditagent.integrity import chain_verifier, crypto
from auditagent.integrity.envelope import SessionOpener, dek_context
from auditagent.keys import KeyProvider, WrappedKey

__all__ = [
    "DataKeyUnavailable",
    "KeyShredded",
    "OpenedRecord",
    "RecordUnreadable",
    "check_newest_data_key",
    "open_records",
    "read_verified",
    "session_sealer",
]


class KeyShredded(AuditagentError):
    """The session's data key was destroyed (erasure or retention): its content is gone."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(
            f"session {session_id} was erased: its data key has been destroyed",
            fix="its chain still verifies with `auditagent verify`",
        )


class RecordUnreadable(AuditagentError):
    """A sealed record failed to open or decode: altered, moved, or from a newer version."""

    def __init__(self, session_id: uuid.UUID, seq: int, why: str) -> None:
        self.seq = seq
        super().__init__(
            f"session {session_id}: record seq {seq} cannot be read ({why})",
            fix=f"run `auditagent verify {session_id}`",
        )


class DataKeyUnavailable(KeyringError):
    """The keyring cannot unwrap a session's data key: the master key version that wrapped it
    is missing, or the keyring is another one. Names the master key id, never a path."""

    def __init__(self, session_id: uuid.UUID, master_key_id: str, *, missing: bool) -> None:
        self.session_id = session_id
        self.master_key_id = master_key_id
        why = (
            f"master key {master_key_id!r} is not in this keyring"
            if missing
            else f"master key {master_key_id!r} of this keyring does not unwrap it "
            "(another keyring file, or the wrapped key was altered)"
        )
        super().__init__(
            f"the data key of session {session_id} cannot be unwrapped: {why}",
            fix=f"restore the keyring that holds master key {master_key_id!r} "
            "(AUDITAGENT_KEYRING_PATH)",
        )


def session_sealer(key_provider: KeyProvider, data_key_row: Any, session: Any) -> crypto.Sealer:
    """The session's AES-GCM sealer, from its wrapped data key row; ``DataKeyUnavailable``
    (naming the master key id) when this keyring cannot unwrap it."""
    if (
        data_key_row is None
        or data_key_row.wrapped is None
        or data_key_row.shredded_at is not None
        or session.status in ("shredded", "purged")
    ):
        raise KeyShredded(session.id)
    context = dek_context(
        tenant=data_key_row.tenant, session_id=data_key_row.session_id, key_id=data_key_row.key_id
    )
    master_key_id = data_key_row.master_key_id or ""
    try:
        key = key_provider.unwrap(
            WrappedKey(master_key_id=master_key_id, blob=bytes(data_key_row.wrapped)),
            context=context,
        )
    except IntegrityError:
        raise DataKeyUnavailable(session.id, master_key_id, missing=False) from None
    except KeyringError:
        raise DataKeyUnavailable(session.id, master_key_id, missing=True) from None
    return crypto.Sealer(key)


def check_newest_data_key(key_provider: KeyProvider, row: Any) -> None:
    """Unwrap the newest data key (``reader.newest_data_key``) or raise ``DataKeyUnavailable``:
    a service started with the wrong keyring says so at once, naming the key id."""
    if row is None:
        return
    master_key_id = row.master_key_id or ""
    context = dek_context(tenant=row.tenant, session_id=row.session_id, key_id=row.key_id)
    try:
        key_provider.unwrap(
            WrappedKey(master_key_id=master_key_id, blob=bytes(row.wrapped)), context=context
        )
    except IntegrityError:
        raise DataKeyUnavailable(row.session_id, master_key_id, missing=False) from None
    except KeyringError:
        raise DataKeyUnavailable(row.session_id, master_key_id, missing=True) from None


@dataclass(frozen=True)
class OpenedRecord:
    seq: int
    at: datetime
    kind: str
    record: records.Record


def open_records(
    sealer: crypto.Sealer,
    rows: Iterable[Any],
    *,
    keep: Callable[[bytes], bool] | None = None,
) -> Iterator[OpenedRecord]:
    """Decrypt and decode each sealed row; ``RecordUnreadable`` on the first that fails.

    ``rows`` are anything with the event columns as attributes (ORM/Core rows, ``Envelope``).
    The associated data is the same as :func:`envelope.aad` of each row's own fields; its
    per-session part is encoded once per session rather than once per row. With ``keep``, a
    row whose (authenticated) plaintext it refuses is skipped without being decoded: decoding
    costs several times the decryption, and a search only needs the records that can match.
    """
    opener: SessionOpener | None = None
    for row in rows:
        session_id, seq, kind = row.session_id, row.seq, row.kind
        if opener is None or session_id != opener.session_id:
            opener = SessionOpener(
                sealer, tenant=row.tenant, session_id=session_id, key_id=row.key_id
            )
        try:
            plaintext = opener.open_row(
                seq, row.tenant, kind, row.key_id, bytes(row.nonce), bytes(row.ciphertext)
            )
        except IntegrityError:
            raise RecordUnreadable(session_id, seq, "integrity check failed") from None
        if keep is not None and not keep(plaintext):
            continue
        yield OpenedRecord(
            seq=seq, at=row.at, kind=kind, record=_decode(session_id, seq, kind, plaintext)
        )


def _decode(session_id: uuid.UUID, seq: int, kind: str, plaintext: bytes) -> records.Record:
    try:
        record = records.decode(plaintext)
    except (ValidationError, ValueError):
        raise RecordUnreadable(session_id, seq, "unknown record format") from None
    if record.kind != kind:
        # The AAD binds kind, so this means a writer bug rather than tampering; still refuse.
        raise RecordUnreadable(session_id, seq, "kind does not match its row")
    return record


def read_verified(
    sealer: crypto.Sealer,
    session: Any,
    rows: Iterable[tuple[Any, ...]],
    *,
    checkpoint: tuple[int, bytes] | None = None,
    problem: str | None = None,
) -> tuple[list[OpenedRecord], chain_verifier.VerifyResult]:
    """Decrypt every record of ``session`` and recompute its hash chain in the same pass.

    ``rows`` are tuples in ``reader.EVENT_TUPLE_COLUMNS`` order (``reader.event_tuples``), all
    of this session. Decryption fails closed exactly as :func:`open_records` does
    (``RecordUnreadable`` on the first record that does not open or decode); the chain result
    is what ``reader.verify_session`` reports for the same rows (the same
    :class:`chain_verifier.ChainVerifier`, the session row's ``(event_count, head_hash)`` as
    checkpoint); verification stops at the first bad record while decryption carries on.
    ``checkpoint`` / ``problem`` are the session's signed checkpoint, as for
    ``reader.verify_session``.
    """
    session_id: uuid.UUID = session.id
    verifier = chain_verifier.ChainVerifier.for_session(session, checkpoint=checkpoint)
    add = verifier.add
    chaining = True
    opened: list[OpenedRecord] = []
    append = opened.append
    opener: SessionOpener | None = None
    # pydantic's validator itself, called with the bytes alone: TypeAdapter.validate_json
    # passes seven keyword arguments on every call, which the validator parses each time
    # (~1.5 µs a record). Anything it refuses goes through records.decode as before.
    validate = records.RECORD_ADAPTER.validator.validate_json
    for row in rows:
        seq, tenant, kind, at, key_id, nonce, ciphertext, _, _ = row
        if opener is None:
            opener = SessionOpener(sealer, tenant=tenant, session_id=session_id, key_id=key_id)
            open_row = opener.open_row
        try:
            plaintext = open_row(seq, tenant, kind, key_id, nonce, ciphertext)
        except IntegrityError:
            raise RecordUnreadable(session_id, seq, "integrity check failed") from None
        try:
            record: records.Record = validate(plaintext)
        except ValueError:
            record = _decode(session_id, seq, kind, plaintext)
        if record.kind != kind:
            raise RecordUnreadable(session_id, seq, "kind does not match its row")
        append(OpenedRecord(seq, at, kind, record))
        if chaining:
            chaining = add(*row)
    return opened, verifier.finish(status=getattr(session, "status", None), problem=problem)
