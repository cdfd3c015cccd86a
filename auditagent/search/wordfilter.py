"""A session's word filter: a per-session keyed Bloom filter of its indexed words, per role.

The beacons nominate candidate sessions; a rare word's beacon is shared with other words
(by design, docs/search.md), often a common one, and every session saying that one becomes a
candidate. The filter lets a search discard those without decrypting them: it holds each of
the session's words at ``HASHES`` bit positions taken from a PRF keyed with a key of that
session alone (HMAC of the tenant's search key and the session id), so

* without the search key the filter is random bits: it holds no word and no unkeyed hash;
* a word sets unrelated positions in two sessions, so filters cannot be compared to find
  sessions sharing a word (the beacons' collisions keep protecting the index);
* a word absent from the session passes with the false positive rate of the filter, which
  costs a decryption, never a result: the decrypted text still decides.

Two versions (the first byte). Version 2, written now: a word's 64 bits are the first 8 bytes
of AES-256(session key, m(w)), where m(w) is bytes 16..31 of the word's HMAC under the tenant's
search key (the HMAC its beacon already costs, cached per word): one AES call per role at close
instead of a keyed hash per word. Version 1, still read: BLAKE2b-64 keyed with the session key.

Written by the recorder's writer when a session closes with every record indexed, and by
``auditagent search reindex`` for closed sessions (both through ``BeaconKey.word_filter``); a
session without one (still open, or indexed before filters existed) is decrypted as before.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from auditagent.integrity.crypto import permute_blocks

__all__ = [
    "BITS_PER_WORD",
    "HASHES",
    "FilterBuilder",
    "Material",
    "WordFilter",
    "build",
    "build_keyed",
    "session_key",
]

HASHES = 3
"""Bit positions per word: three slices of one 64-bit keyed hash."""
BITS_PER_WORD = 16
"""At least this many filter bits per word (the size is rounded up to a power of two, so
16 to 32): a false positive rate of 0.5 % at most, 0.07 % at least (docs/search.md)."""
_MIN_LOG = 6
_MAX_LOG = 21
"""2^21 bits per role at most: ``HASHES`` slices of 21 bits fit a 64-bit hash."""
_VERSION = 1
"""BLAKE2b per word (``build``, ``FilterBuilder``): read, no longer written by the recorder."""
_KEYED = 2
"""AES of the words' HMAC material (``build_keyed``): what the recorder and reindex write."""
Material = Callable[[Sequence[bytes]], bytes]
"""Words (encoded) -> their 16-byte HMAC material each, in order (``BeaconKey.material``)."""
_LABEL = b"\0word-filter"
"""NUL-prefixed: no word (the only other input of the search key's HMAC) can spell it."""


def session_key(search_key: bytes, session_id: uuid.UUID) -> bytes:
    """The key of one session's filter, derived from the tenant's search key."""
    return hmac.digest(search_key, _LABEL + session_id.bytes, "sha256")


def _hashes(key: bytes, words: Iterable[bytes]) -> dict[bytes, int]:
    base = hashlib.blake2b(key=key, digest_size=8)
    out: dict[bytes, int] = {}
    for w in words:
        h = base.copy()
        h.update(w)
        out[w] = int.from_bytes(h.digest(), "little")
    return out


def _log_size(n: int) -> int:
    return min(_MAX_LOG, max(_MIN_LOG, (n * BITS_PER_WORD - 1).bit_length()))


def _keyed(key: bytes, material: bytes) -> npt.NDArray[np.uint64]:
    """Each word's 64 bits (version 2): the first 8 bytes of AES-256(key, its material)."""
    blocks = np.frombuffer(permute_blocks(key, material), dtype="<u8")
    return blocks[::2].astype(np.uint64)


def _bits(hashes: Sequence[int] | npt.NDArray[np.uint64]) -> tuple[int, bytes]:
    """One role's section: its size (log2 of bits) and the bits of ``hashes`` set, little-endian
    within each byte. Vectorized: a session of thousands of words closes inside the writer's
    loop slice (a Python loop took ~2 µs a word)."""
    log = _log_size(len(hashes))
    mask = np.uint64((1 << log) - 1)
    x = (
        hashes
        if isinstance(hashes, np.ndarray)
        else np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
    )
    bits = np.zeros(1 << log, dtype=np.uint8)
    for shift in (0, 21, 42):
        bits[(x >> np.uint64(shift)) & mask] = 1
    return log, np.packbits(bits, bitorder="little").tobytes()


def _assemble(
    sections: Mapping[int, Sequence[int] | npt.NDArray[np.uint64]], version: int = _VERSION
) -> bytes:
    parts = [bytes([version])]
    for code, hashes in sorted(sections.items()):
        log, bits = _bits(hashes)
        parts.append(bytes([code, log]))
        parts.append(bits)
    return b"".join(parts)


def build(key: bytes, words_by_role: Mapping[int, Iterable[bytes]]) -> bytes:
    """The version 1 filter of a session (``key``: :func:`session_key`) holding ``words_by_role``
    (role code -> the role's indexed words, encoded as keyed)."""
    roles = {code: set(ws) for code, ws in words_by_role.items()}
    hashes = _hashes(key, set().union(*roles.values()) if roles else ())
    return _assemble({code: [hashes[w] for w in ws] for code, ws in roles.items()})


def build_keyed(key: bytes, material_by_role: Mapping[int, bytes]) -> bytes:
    """The version 2 filter of a session (``key``: :func:`session_key`): role code -> the
    role's words' material, 16 bytes a word, each word once (``BeaconKey.word_filter``)."""
    return _assemble({code: _keyed(key, m) for code, m in material_by_role.items() if m}, _KEYED)


class FilterBuilder:
    """A version 1 filter built as the words come (what the recorder's writer used before
    version 2): each new word hashed once, the close only sets bits. ``finish`` gives exactly
    what :func:`build` gives for the same words."""

    __slots__ = ("_base", "_roles")

    def __init__(self, key: bytes) -> None:
        self._base = hashlib.blake2b(key=key, digest_size=8)
        self._roles: dict[int, list[int]] = {}

    def add(self, code: int, new_words: Iterable[bytes]) -> None:
        """Words of role ``code`` not added for that role before."""
        out = self._roles.setdefault(code, [])
        base = self._base
        for w in new_words:
            h = base.copy()
            h.update(w)
            out.append(int.from_bytes(h.digest(), "little"))

    def finish(self) -> bytes:
        return _assemble(self._roles)


class WordFilter:
    """A stored filter, parsed; None from :meth:`parse` for anything it cannot read."""

    __slots__ = ("_key", "_material", "_roles")

    def __init__(
        self, key: bytes, roles: dict[int, tuple[int, bytes]], material: Material | None
    ) -> None:
        self._key = key
        self._roles = roles
        self._material = material

    @classmethod
    def parse(
        cls, key: bytes, data: bytes, *, material: Material | None = None
    ) -> WordFilter | None:
        """``key``: the session's (:func:`session_key`); ``material``: the search key's word
        material, needed for version 2 (without it, such a filter is not read)."""
        if not data or data[0] not in (_VERSION, _KEYED):
            return None
        if data[0] == _KEYED and material is None:
            return None
        roles: dict[int, tuple[int, bytes]] = {}
        at = 1
        while at < len(data):
            if at + 2 > len(data):
                return None
            code, log = data[at], data[at + 1]
            size = 1 << (log - 3) if _MIN_LOG <= log <= _MAX_LOG else -1
            if size < 0 or at + 2 + size > len(data):
                return None
            roles[code] = (log, data[at + 2 : at + 2 + size])
            at += 2 + size
        return cls(key, roles, material if data[0] == _KEYED else None)

    def may_hold(self, words: Sequence[bytes], *, role: int | None) -> bool:
        """False only if some word of ``words`` is in none of the session's texts (of
        ``role``, when one is given)."""
        if self._material is None:
            hashes = _hashes(self._key, words)
        else:
            # A query has a few words: int.from_bytes beats numpy's set-up here.
            out = permute_blocks(self._key, self._material(words))
            hashes = {
                w: int.from_bytes(out[16 * i : 16 * i + 8], "little") for i, w in enumerate(words)
            }
        if role is None:
            roles = list(self._roles.values())
        else:
            # A role with no filter section has no indexed word at all.
            roles = [self._roles[role]] if role in self._roles else []
        for w in words:
            x = hashes[w]
            if not any(_has(log, bits, x) for log, bits in roles):
                return False
        return True


def _has(log: int, bits: bytes, x: int) -> bool:
    mask = (1 << log) - 1
    a, b, c = x & mask, x >> 21 & mask, x >> 42 & mask
    return bool(
        bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1 and bits[c >> 3] >> (c & 7) & 1
    )
