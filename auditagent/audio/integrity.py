"""A stored session's audio held to its audio records (read side; needs the data key).

The audio records are found by their plaintext kind and opened alone: nothing else of the
session is decrypted. Their place in the chain is what chain verification proves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import Connection

from auditagent import crypto, records
from auditagent.envelope import Envelope, open_envelope
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
