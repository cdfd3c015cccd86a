"""A stored session's audio held to its audio records (read side; needs the data key).

The audio records are found by their plaintext kind and opened alone: nothing else of the
session is decrypted. Their place in the chain is what chain verification proves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection

import auditagent.records as records
from auditagent.errors import AuditagentError
from auditagent.integrity import crypto
from auditagent.integrity.envelope import Envelope, open_envelope
from auditagent.keys import KeyProvider
from auditagent.reading.decrypt import session_sealer
from auditagent.store import reader

from .sealing import SealedChunk
from .store import ChunkInfo, PostgresAudioStore
from .verify import AudioCheck, check_audio

__all__ = ["AUDIO_KIND", "check_stored_audio"]

AUDIO_KIND = "audio_chunk"


def check_stored_audio(
    conn: Connection, sealer: crypto.Sealer, session_id: uuid.UUID
) -> AudioCheck:
    """Every stored chunk matches the audio record that committed the chain to it."""
    recs: list[records.AudioChunk] = []
    for row in reader.iter_events(conn, session_id, kinds=[AUDIO_KIND]):
        env = Envelope(
            row.session_id,
            row.seq,
            row.tenant,
            row.kind,
            row.at,
            row.key_id,
            bytes(row.nonce),
            bytes(row.ciphertext),
            bytes(row.prev_hash),
            bytes(row.hash),
        )
        rec = records.decode(open_envelope(sealer, env))
        if isinstance(rec, records.AudioChunk):
            recs.append(rec)
    store = PostgresAudioStore(conn)
    stored = [(info, sealed.digest) for info, sealed in _with_infos(store, session_id)]
    return check_audio(recs, stored)


def _with_infos(
    store: PostgresAudioStore, session_id: uuid.UUID
) -> Iterator[tuple[ChunkInfo, SealedChunk]]:
    for sealed in store.read(session_id):
        yield ChunkInfo(sealed.index, sealed.offset, sealed.duration, sealed.size), sealed


def audio_verdict(
    conn: Connection, session: Any, key_provider: Callable[[], KeyProvider]
) -> tuple[bool, str] | None:
    """For ``auditagent verify``: (ok, one line) about a session's audio; None with no audio.

    The keyring is asked for only when there is audio; without it the audio is reported
    unchecked (not a failure: the chain under it still verified)."""
    counts = reader.event_counts(conn, session.id)
    if not counts.get(AUDIO_KIND) and not PostgresAudioStore(conn).index(session.id):
        return None
    try:
        sealer = session_sealer(key_provider(), reader.get_data_key(conn, session.id), session)
    except AuditagentError as exc:
        return True, f"audio not checked ({exc.message})"
    check = check_stored_audio(conn, sealer, session.id)
    if not check.ok:
        return False, f"audio INVALID at chunk {check.first_bad_index}: {check.reason}"
    state = "complete" if check.complete else "incomplete (no final chunk)"
    return True, f"audio: {check.chunks} chunks, {check.seconds:.1f} s, {state}"
