"""Local keyring: file safety, wrap/unwrap, rotation, rewrap, blind index, keys CLI."""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from auditagent.cli import keys as keys_cli
from auditagent.errors import IntegrityError, KeyringError
from auditagent.integrity import crypto, envelope
from auditagent.keys import (
    KeyProvider,
    LocalKeyring,
    WrappedKey,
    ensure_keyring,
    load_key_provider,
)
from auditagent.settings import Settings

SID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab")
CTX = envelope.dek_context(tenant="acme", session_id=SID, key_id="dk:1")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nested" / "keyring.json"


@pytest.fixture
def keyring(keyring_path: Path) -> LocalKeyring:
    return LocalKeyring.init(keyring_path)


# --- file creation and loading ------------------------------------------------------------


def test_init_creates_0600_file_in_0700_dirs(keyring_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        LocalKeyring.init(keyring_path)
    finally:
        os.umask(old_umask)
    assert mode(keyring_path) == 0o600
    assert mode(keyring_path.parent) == 0o700
    assert mode(keyring_path.parent.parent) == 0o700
    assert [p.name for p in keyring_path.parent.iterdir()] == ["keyring.json"]  # no temp left
    doc = json.loads(keyring_path.read_text())
    assert doc["version"] == 1
    assert [k["id"] for k in doc["keys"]] == ["local:v1"]
    assert len(base64.b64decode(doc["keys"][0]["key"])) == 32
    assert len(base64.b64decode(doc["index_key"])) == 32
    assert len(base64.b64decode(doc["signing_key"])) == 32
    assert "created_at" in doc["keys"][0]


def test_init_leaves_an_existing_parent_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    LocalKeyring.init(tmp_path / "keyring.json")
    assert mode(tmp_path) == 0o755


def test_init_refuses_to_overwrite(keyring: LocalKeyring, keyring_path: Path) -> None:
    before = keyring_path.read_bytes()
    with pytest.raises(KeyringError) as info:
        LocalKeyring.init(keyring_path)
    assert "already exists" in str(info.value)
    assert "auditagent keys rotate" in str(info.value)
    assert keyring_path.read_bytes() == before


def test_load_missing_keyring(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(KeyringError) as info:
        LocalKeyring.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "run `auditagent keys init`" in message
    assert "\n" not in message


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_load_refuses_group_or_world_access(
    keyring: LocalKeyring, keyring_path: Path, bad_mode: int
) -> None:
    keyring_path.chmod(bad_mode)
    with pytest.raises(KeyringError) as info:
        LocalKeyring.load(keyring_path)
    assert str(info.value).endswith(f"chmod 600 {keyring_path}")
    keyring_path.chmod(0o600)
    assert LocalKeyring.load(keyring_path).current_key_id() == "local:v1"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 2, "keys": []}',
        b'{"version": 1, "keys": [], "index_key": "", "signing_key": ""}',
    ],
)
def test_load_refuses_malformed_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "keyring.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError) as info:
        LocalKeyring.load(path)
    message = str(info.value)
    assert "malformed" in message and "\n" not in message


def test_load_refuses_bad_key_material(keyring_path: Path, keyring: LocalKeyring) -> None:
    doc = json.loads(keyring_path.read_text())
    doc["keys"][0]["key"] = base64.b64encode(bytes(16)).decode()
    keyring_path.write_text(json.dumps(doc))
    with pytest.raises(KeyringError, match="16 bytes, expected 32"):
        LocalKeyring.load(keyring_path)


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyringError):
        LocalKeyring.load(tmp_path)


# --- wrap / unwrap ------------------------------------------------------------------------


def test_wrap_unwrap_roundtrip(keyring: LocalKeyring) -> None:
    dek = crypto.new_data_key()
    wrapped = keyring.wrap(dek, context=CTX)
    assert wrapped.master_key_id == "local:v1"
    assert len(wrapped.blob) == 12 + 32 + 16
    assert dek not in wrapped.blob
    assert keyring.unwrap(wrapped, context=CTX) == dek
    reloaded = LocalKeyring.load(keyring.path)
    assert reloaded.unwrap(wrapped, context=CTX) == dek


def test_wrapped_key_cannot_move_to_another_session(keyring: LocalKeyring) -> None:
    wrapped = keyring.wrap(crypto.new_data_key(), context=CTX)
    for other in (
        envelope.dek_context(tenant="globex", session_id=SID, key_id="dk:1"),
        envelope.dek_context(tenant="acme", session_id=uuid.uuid4(), key_id="dk:1"),
        envelope.dek_context(tenant="acme", session_id=SID, key_id="dk:2"),
    ):
        with pytest.raises(IntegrityError):
            keyring.unwrap(wrapped, context=other)


def test_tampered_or_foreign_wrapped_key(keyring: LocalKeyring, tmp_path: Path) -> None:
    wrapped = keyring.wrap(crypto.new_data_key(), context=CTX)
    flipped = bytearray(wrapped.blob)
    flipped[-1] ^= 1
    for blob in (bytes(flipped), wrapped.blob[:-1], wrapped.blob[:5], b""):
        with pytest.raises(IntegrityError):
            keyring.unwrap(WrappedKey(wrapped.master_key_id, blob), context=CTX)
    # Another installation's keyring has a "local:v1" too, with a different key.
    other = LocalKeyring.init(tmp_path / "other" / "keyring.json")
    with pytest.raises(IntegrityError):
        other.unwrap(wrapped, context=CTX)


def test_unknown_master_key_id(keyring: LocalKeyring) -> None:
    wrapped = keyring.wrap(crypto.new_data_key(), context=CTX)
    with pytest.raises(KeyringError) as info:
        keyring.unwrap(WrappedKey("local:v9", wrapped.blob), context=CTX)
    assert "local:v9" in str(info.value) and "restore" in str(info.value)


def test_wrap_rejects_wrong_sized_data_key(keyring: LocalKeyring) -> None:
    with pytest.raises(ValueError):
        keyring.wrap(bytes(16), context=CTX)


# --- rotation and rewrap ------------------------------------------------------------------


def test_rotation_keeps_old_versions(keyring: LocalKeyring, keyring_path: Path) -> None:
    dek = crypto.new_data_key()
    old = keyring.wrap(dek, context=CTX)
    assert keyring.rotate() == "local:v2"
    assert keyring.current_key_id() == "local:v2"
    new = keyring.wrap(dek, context=CTX)
    assert new.master_key_id == "local:v2"
    assert keyring.unwrap(old, context=CTX) == dek
    assert keyring.unwrap(new, context=CTX) == dek
    assert mode(keyring_path) == 0o600
    assert [p.name for p in keyring_path.parent.iterdir()] == ["keyring.json"]
    reloaded = LocalKeyring.load(keyring_path)
    assert reloaded.current_key_id() == "local:v2"
    assert reloaded.key_ids() == ["local:v1", "local:v2"]
    assert reloaded.unwrap(old, context=CTX) == dek
    # Index and signing keys never rotate.
    assert reloaded.blind_index(tenant="t", value="v") == keyring.blind_index(tenant="t", value="v")
    assert reloaded.signing_public_key() == keyring.signing_public_key()


def test_rotation_by_two_handles_keeps_both_versions(keyring_path: Path) -> None:
    a = LocalKeyring.init(keyring_path)
    b = LocalKeyring.load(keyring_path)
    assert a.rotate() == "local:v2"
    assert b.rotate() == "local:v3"  # re-reads the file, so v2 is not lost
    assert LocalKeyring.load(keyring_path).key_ids() == ["local:v1", "local:v2", "local:v3"]


def test_rewrap(keyring: LocalKeyring) -> None:
    dek = crypto.new_data_key()
    old = keyring.wrap(dek, context=CTX)
    keyring.rotate()
    new = keyring.rewrap_blob(old, context=CTX)
    assert new.master_key_id == "local:v2"
    assert new.blob != old.blob
    assert keyring.unwrap(new, context=CTX) == dek
    assert keyring.unwrap(old, context=CTX) == dek  # old blob still opens with v1
    with pytest.raises(IntegrityError):
        keyring.rewrap_blob(
            old, context=envelope.dek_context(tenant="x", session_id=SID, key_id="d")
        )


# --- blind index and signing key ----------------------------------------------------------


def test_blind_index_is_stable_and_tenant_separated(keyring: LocalKeyring) -> None:
    a = keyring.blind_index(tenant="acme", value="+15551234567")
    assert len(a) == 32
    assert a == keyring.blind_index(tenant="acme", value="+15551234567", purpose="participant")
    assert a == LocalKeyring.load(keyring.path).blind_index(tenant="acme", value="+15551234567")
    assert a != keyring.blind_index(tenant="globex", value="+15551234567")
    assert a != keyring.blind_index(tenant="acme", value="+15551234568")
    assert a != keyring.blind_index(tenant="acme", value="+15551234567", purpose="caller")
    # Field boundaries cannot be shifted.
    assert keyring.blind_index(tenant="ab", value="c") != keyring.blind_index(
        tenant="a", value="bc"
    )
    with pytest.raises(ValueError):
        keyring.blind_index(tenant="a\0b", value="c")


def test_blind_index_matches_documented_format(keyring: LocalKeyring) -> None:
    import hashlib
    import hmac

    index_key = base64.b64decode(json.loads(keyring.path.read_text())["index_key"])
    expected = hmac.new(index_key, b"participant\0acme\0alice", hashlib.sha256).digest()
    assert keyring.blind_index(tenant="acme", value="alice") == expected


def test_blind_index_differs_between_keyrings(keyring: LocalKeyring, tmp_path: Path) -> None:
    other = LocalKeyring.init(tmp_path / "k2.json")
    assert keyring.blind_index(tenant="t", value="v") != other.blind_index(tenant="t", value="v")


def test_signing_key(keyring: LocalKeyring) -> None:
    private = keyring.signing_key()
    public = keyring.signing_public_key()
    assert crypto.signing_public_key(private) == public
    assert crypto.verify_signature(public, b"m", crypto.sign(private, b"m"))


# --- settings entry points ----------------------------------------------------------------


def test_load_key_provider_and_ensure_keyring(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(KeyringError, match="auditagent keys init"):
        load_key_provider(settings)
    created = ensure_keyring(settings)
    assert created.path == tmp_path / "data" / "keyring.json"
    assert mode(tmp_path / "data") == 0o700
    again = ensure_keyring(settings)
    assert again.signing_public_key() == created.signing_public_key()
    provider: KeyProvider = load_key_provider(settings)
    assert provider.current_key_id() == "local:v1"


def test_explicit_keyring_path(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", keyring_path=tmp_path / "elsewhere.json")
    assert ensure_keyring(settings).path == tmp_path / "elsewhere.json"


# --- CLI ----------------------------------------------------------------------------------


def run_cli(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    keys_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args, settings)
    return code


def test_cli_init_rotate_public(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = settings.resolved_keyring_path
    assert run_cli(["keys", "init"], settings) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and str(path) in out
    with pytest.raises(KeyringError, match="auditagent keys rotate"):
        run_cli(["keys", "init"], settings)
    assert run_cli(["keys", "rotate"], settings) == 0
    assert "local:v2" in capsys.readouterr().out
    assert LocalKeyring.load(path).current_key_id() == "local:v2"
    assert run_cli(["keys", "public"], settings) == 0
    public = base64.b64decode(capsys.readouterr().out.strip())
    assert public == LocalKeyring.load(path).signing_public_key()


def test_cli_requires_an_action(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run_cli(["keys"], Settings(data_dir=tmp_path))
