"""Master keys: wrapping per-session data keys, the blind index key and the checkpoint key.

``KeyProvider`` is what the rest of the code depends on; ``LocalKeyring`` implements it over a
0600 JSON file. Data keys never touch the file: only master keys, the non-rotating index key and
the Ed25519 checkpoint key live there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from auditagent.errors import IntegrityError, KeyringError
from auditagent.integrity import crypto
from auditagent.keyfile import dir_lock, make_private_dirs, read_document, write_atomic
from auditagent.settings import Settings

__all__ = [
    "KeyProvider",
    "LocalKeyring",
    "WrappedKey",
    "ensure_keyring",
    "load_key_provider",
]

_WRAP_LABEL = b"auditagent/dek/v1\0"
_SEARCH_SALT = b"auditagent/search-index/v1"
_FORMAT_VERSION = 1
_ID_PREFIX = "local:v"


@dataclass(frozen=True)
class WrappedKey:
    """A data key sealed under one master key version (``blob = nonce || ciphertext``)."""

    master_key_id: str
    blob: bytes


class KeyProvider(Protocol):
    """Where master keys live. ``LocalKeyring`` is the only implementation so far."""

    def current_key_id(self) -> str:
        """Id of the master key version new data keys are wrapped with."""
        ...

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        """Seal ``data_key`` under the current master key, bound to ``context``."""
        ...

    def unwrap(self, wrapped: WrappedKey, *, context: bytes) -> bytes:
        """The data key; ``IntegrityError`` if it fails, ``KeyringError`` if the version is gone."""
        ...

    def rewrap_blob(self, wrapped: WrappedKey, *, context: bytes) -> WrappedKey:
        """Unwrap with the version that wrapped it, wrap with the current one."""
        ...

    def blind_index(self, *, tenant: str, value: str, purpose: str = "participant") -> bytes:
        """A keyed, tenant-separated lookup token for ``value`` (never reversible)."""
        ...

    def key_ids(self) -> list[str]:
        """Every master key version this provider holds, oldest first."""
        ...

    def search_key(self, *, tenant: str, key_id: str | None = None) -> tuple[str, bytes]:
        """``(key_id, key)``: the tenant's 32-byte search index key under master key version
        ``key_id`` (default: the current one). A new master version gives a new index key."""
        ...

    def signing_key(self) -> bytes:
        """Raw Ed25519 private key for signed checkpoints."""
        ...

    def signing_public_key(self) -> bytes:
        """Raw Ed25519 public key matching ``signing_key``."""
        ...


@dataclass(frozen=True)
class _State:
    """An immutable snapshot, swapped whole on rotation so readers never see a half-update."""

    versions: dict[str, crypto.Sealer]
    current: str
    search_prks: dict[str, bytes]
    """HKDF-Extract of each master key version for the search index; the raw master key
    itself is kept only inside its Sealer."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LocalKeyring(KeyProvider):
    """Versioned master keys in a local JSON file (mode 0600).

    The last entry of ``keys`` is the current version. Old versions stay so data keys wrapped
    under them still unwrap until ``auditagent keys rewrap`` has moved them. A process that
    loaded the keyring keeps wrapping with the version that was current when it loaded.
    """

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        """Use ``init`` or ``load``; this takes an already validated document."""
        self._path = path
        self._lock = threading.Lock()
        self._index_key, self._signing_key = _parse_static(path, document)
        self._state = _parse_state(path, document)

    @property
    def path(self) -> Path:
        return self._path

    # --- construction -------------------------------------------------------------------

    @classmethod
    def init(cls, path: Path) -> LocalKeyring:
        """Create a new keyring file; refuses to replace an existing one."""
        path = Path(path)
        if path.exists():
            raise KeyringError(f"keyring {path} already exists", fix="use `auditagent keys rotate`")
        document: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "keys": [{"id": f"{_ID_PREFIX}1", "created_at": _now(), "key": _b64(_new_key())}],
            "index_key": _b64(_new_key()),
            "signing_key": _b64(crypto.signing_key_generate()),
        }
        make_private_dirs(path.parent)
        with dir_lock(path.parent):
            write_atomic(path, document, replace=False)
        return cls(path, document)

    @classmethod
    def load(cls, path: Path) -> LocalKeyring:
        return cls(Path(path), read_document(Path(path)))

    # --- KeyProvider --------------------------------------------------------------------

    def current_key_id(self) -> str:
        return self._state.current

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        if len(data_key) != crypto.KEY_SIZE:
            raise ValueError(f"data key must be {crypto.KEY_SIZE} bytes, got {len(data_key)}")
        state = self._state
        nonce, ciphertext = state.versions[state.current].seal(data_key, _WRAP_LABEL + context)
        return WrappedKey(master_key_id=state.current, blob=nonce + ciphertext)

    def unwrap(self, wrapped: WrappedKey, *, context: bytes) -> bytes:
        sealer = self._state.versions.get(wrapped.master_key_id)
        if sealer is None:
            raise KeyringError(
                f"master key {wrapped.master_key_id!r} is not in keyring {self._path}",
                fix="restore the keyring backup that holds it (AUDITAGENT_KEYRING_PATH)",
            )
        blob = bytes(wrapped.blob)
        n = crypto.NONCE_SIZE
        data_key = sealer.open(blob[:n], blob[n:], _WRAP_LABEL + context)
        if len(data_key) != crypto.KEY_SIZE:
            raise IntegrityError()
        return data_key

    def rewrap_blob(self, wrapped: WrappedKey, *, context: bytes) -> WrappedKey:
        return self.wrap(self.unwrap(wrapped, context=context), context=context)

    def blind_index(self, *, tenant: str, value: str, purpose: str = "participant") -> bytes:
        # A NUL in tenant or purpose would let two different (tenant, value) pairs encode to the
        # same message; value is last, so it may contain anything.
        if "\0" in tenant or "\0" in purpose:
            raise ValueError("tenant and purpose must not contain NUL")
        message = b"".join((purpose.encode(), b"\0", tenant.encode(), b"\0", value.encode()))
        return hmac.new(self._index_key, message, hashlib.sha256).digest()

    def search_key(self, *, tenant: str, key_id: str | None = None) -> tuple[str, bytes]:
        state = self._state
        key_id = state.current if key_id is None else key_id
        prk = state.search_prks.get(key_id)
        if prk is None:
            raise KeyringError(
                f"master key {key_id!r} is not in keyring {self._path}",
                fix="run `auditagent search reindex` to index under the current key",
            )
        return key_id, hkdf_expand(prk, b"tenant\0" + tenant.encode(), 32)

    def signing_key(self) -> bytes:
        return self._signing_key

    def signing_public_key(self) -> bytes:
        return crypto.signing_public_key(self._signing_key)

    # --- rotation -----------------------------------------------------------------------

    def rotate(self) -> str:
        """Add a new master key version, make it current, rewrite the file; returns its id.

        Re-reads the file under a directory lock first, so a rotation made by another process
        since this one loaded is kept rather than overwritten.
        """
        with self._lock, dir_lock(self._path.parent):
            document = read_document(self._path)
            numbers = [_version_number(k["id"]) for k in document["keys"]]
            new_id = f"{_ID_PREFIX}{max(numbers, default=0) + 1}"
            document["keys"].append({"id": new_id, "created_at": _now(), "key": _b64(_new_key())})
            write_atomic(self._path, document, replace=True)
            self._state = _parse_state(self._path, document)
        return new_id

    def key_ids(self) -> list[str]:
        """All master key versions, oldest first."""
        return list(self._state.versions)


# --- key derivation (RFC 5869 HKDF-SHA256 over the stdlib HMAC) ----------------------------


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, "sha256")


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 output must be 1..8160 bytes")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), "sha256")
        out += block
        counter += 1
    return out[:length]


# --- file handling ----------------------------------------------------------------------


def _new_key() -> bytes:
    return crypto.new_data_key()


def _version_number(key_id: str) -> int:
    if key_id.startswith(_ID_PREFIX) and key_id[len(_ID_PREFIX) :].isdecimal():
        return int(key_id[len(_ID_PREFIX) :])
    return 0


def _malformed(path: Path, what: str) -> KeyringError:
    return KeyringError(f"keyring {path} is malformed ({what})", fix="restore it from a backup")


def _decode_key(path: Path, value: object, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise _malformed(path, f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(path, f"{what} is not valid base64") from None
    if len(raw) != size:
        raise _malformed(path, f"{what} is {len(raw)} bytes, expected {size}")
    return raw


def _parse_static(path: Path, document: dict[str, Any]) -> tuple[bytes, bytes]:
    index_key = _decode_key(path, document.get("index_key"), "index_key", 32)
    signing_key = _decode_key(path, document.get("signing_key"), "signing_key", 32)
    return index_key, signing_key


def _parse_state(path: Path, document: dict[str, Any]) -> _State:
    if document.get("version") != _FORMAT_VERSION:
        raise _malformed(path, f"unsupported version {document.get('version')!r}")
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise _malformed(path, "no master keys")
    versions: dict[str, crypto.Sealer] = {}
    prks: dict[str, bytes] = {}
    for entry in entries:
        key_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(key_id, str) or not key_id:
            raise _malformed(path, "a master key has no id")
        if key_id in versions:
            raise _malformed(path, f"master key id {key_id!r} appears twice")
        key = _decode_key(path, entry.get("key"), f"key {key_id!r}", crypto.KEY_SIZE)
        versions[key_id] = crypto.Sealer(key)
        prks[key_id] = hkdf_extract(_SEARCH_SALT, key)
    return _State(versions=versions, current=entries[-1]["id"], search_prks=prks)


# --- settings entry points ----------------------------------------------------------------


def load_key_provider(settings: Settings) -> KeyProvider:
    """The configured key provider: the local keyring at ``settings.resolved_keyring_path``."""
    return LocalKeyring.load(settings.resolved_keyring_path)


def ensure_keyring(settings: Settings) -> LocalKeyring:
    """Load the keyring, creating it first if there is none (for the demo and first runs)."""
    path = settings.resolved_keyring_path
    if not path.exists():
        try:
            return LocalKeyring.init(path)
        except KeyringError:
            # Another process created it between the check and the link; use theirs.
            if not path.exists():
                raise
    return LocalKeyring.load(path)
