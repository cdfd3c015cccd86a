"""Beacons: keyed per tenant and key version, truncated so that words collide."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from auditagent import records
from auditagent.keys import LocalKeyring, hkdf_expand, hkdf_extract
from auditagent.search.beacons import BEACON_BITS, BeaconKey


def _key(kr: LocalKeyring, tenant: str, key_id: str | None = None) -> BeaconKey:
    kid, raw = kr.search_key(tenant=tenant, key_id=key_id)
    return BeaconKey(tenant=tenant, key_id=kid, key=raw)


def test_hkdf_matches_rfc5869_case_1() -> None:
    prk = hkdf_extract(bytes(range(13)), b"\x0b" * 22)
    okm = hkdf_expand(prk, bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_tenants_and_key_versions_get_unrelated_beacons(tmp_path: Path) -> None:
    kr = LocalKeyring.init(tmp_path / "k.json")
    words = [f"word{i}" for i in range(200)]
    a, b = _key(kr, "acme"), _key(kr, "globex")
    assert [a.beacon(w) for w in words] != [b.beacon(w) for w in words]
    old = _key(kr, "acme")
    new_id = kr.rotate()
    new = _key(kr, "acme")
    assert new.key_id == new_id != old.key_id
    assert [old.beacon(w) for w in words] != [new.beacon(w) for w in words]
    # The old version stays derivable (searches during a reindex), and equal to before.
    again = _key(kr, "acme", old.key_id)
    assert [again.beacon(w) for w in words] == [old.beacon(w) for w in words]
    # A reloaded keyring derives the same keys.
    assert LocalKeyring.load(kr.path).search_key(tenant="acme") == kr.search_key(tenant="acme")


def test_beacons_are_short_and_collide(tmp_path: Path) -> None:
    key = _key(LocalKeyring.init(tmp_path / "k.json"), "acme")
    values = {key.beacon(f"w{i}") for i in range(50_000)}
    assert max(values) < 2**BEACON_BITS
    # 50,000 words into 16,384 buckets: nearly every bucket is shared.
    assert len(values) < 2**BEACON_BITS


def test_a_beacon_is_not_an_unkeyed_hash(tmp_path: Path) -> None:
    key = _key(LocalKeyring.init(tmp_path / "k.json"), "acme")
    unkeyed = [
        int.from_bytes(hashlib.sha256(f"w{i}".encode()).digest()[:2], "big") >> 2 for i in range(64)
    ]
    assert [key.beacon(f"w{i}") for i in range(64)] != unkeyed


def test_entries_carry_the_role(tmp_path: Path) -> None:
    key = _key(LocalKeyring.init(tmp_path / "k.json"), "acme")
    at = datetime.now(timezone.utc)
    user = key.entries(records.UserUtterance(at=at, text="Zebrafinch, please", source="stt"))
    agent = key.entries(records.AgentUtterance(at=at, text="zebrafinch"))
    tool = key.entries(
        records.ToolResult(at=at, call_id="c", name="transfer_funds", exception="zebrafinch")
    )
    beacon = key.beacon("zebrafinch")
    assert (1, beacon) in user and (2, beacon) in agent and (3, beacon) in tool
    assert (3, key.beacon("transfer")) in tool
    assert key.entries(records.Notice(at=at, code="x", message="zebrafinch")) == set()


def test_a_beacon_is_the_truncated_hmac_sha256_of_the_word() -> None:
    """The writer's HMAC (two SHA-256 states keyed once) is the standard one: existing indexes
    stay valid; the filter material is the same digest's second half."""
    import hmac

    key = bytes(range(32))
    bk = BeaconKey(tenant="t", key_id="local:v1", key=key)
    for word in ("chargeback", "transfer", "ünïcode", "x" * 200):
        digest = hmac.digest(key, word.encode(), "sha256")
        assert bk.digest(word.encode()) == digest
        assert bk.beacon(word) == int.from_bytes(digest[:2], "big") >> (16 - BEACON_BITS)
        assert bk.material([word.encode()]) == digest[16:]
