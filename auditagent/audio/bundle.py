"""Call audio in an exported evidence bundle.

``audio`` in a bundle holds the decrypted recording (base64 Ogg) and, per chunk, its place,
opened size and the digest of its sealed form. The whole bundle is signed, so the recording is
bound by the signature; offline, without any key, the chunk list is also held to the
``audio_chunk`` records in the bundle (which the chain binds): same chunks, same digests, and
sizes that add up to the recording.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from .sealing import SealedChunk
from .verify import AudioCheck

__all__ = ["bundle_audio", "bundle_audio_findings"]

MEDIA_TYPE = "audio/ogg"


def bundle_audio(ogg: bytes, chunks: Sequence[SealedChunk], check: AudioCheck) -> dict[str, Any]:
    return {
        "media_type": MEDIA_TYPE,
        "data_base64": base64.b64encode(ogg).decode("ascii"),
        "chunks": [
            {
                "index": c.index,
                "offset": c.offset,
                "duration": c.duration,
                "size": c.size,
                "sha256": c.digest.hex(),
            }
            for c in chunks
        ],
        "ok": check.ok,
        "reason": check.reason,
    }


def bundle_audio_findings(doc: dict[str, Any]) -> list[str]:
    """What does not hold in a bundle's ``audio`` part; empty when it holds or is absent."""
    audio = doc.get("audio")
    if audio is None:
        return []
    try:
        data = base64.b64decode(audio["data_base64"], validate=True)
        chunks = list(audio["chunks"])
        recs = {
            int(r["record"]["index"]): r["record"]
            for r in doc.get("records") or []
            if isinstance(r, dict) and r.get("kind") == "audio_chunk"
        }
        problems: list[str] = []
        if len(chunks) != len(recs):
            problems.append(f"audio: {len(chunks)} chunks in the bundle, {len(recs)} audio records")
        for c in chunks:
            rec = recs.get(int(c["index"]))
            if rec is None or (rec["sha256"], rec["size"], rec["offset"], rec["duration"]) != (
                c["sha256"],
                c["size"],
                c["offset"],
                c["duration"],
            ):
                problems.append(f"audio: chunk {c['index']} does not match its audio record")
        if sum(int(c["size"]) for c in chunks) != len(data):
            problems.append("audio: the recording's length differs from its chunks' sizes")
        return problems
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return [f"audio: malformed ({type(exc).__name__})"]
