"""AES-256-GCM sealing, Ed25519 signatures, and the word filter's block PRP.

This is the only module that imports ``cryptography.hazmat``; everything else goes through the
functions here so the primitives, key sizes and nonce sizes are decided in one place.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auditagent.errors import IntegrityError

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "Sealer",
    "new_data_key",
    "new_nonce",
    "open",
    "permute_blocks",
    "seal",
    "sign",
    "signing_key_generate",
    "signing_public_key",
    "verify_signature",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16

_urandom = os.urandom


def new_data_key() -> bytes:
    """A fresh AES-256 key."""
    return _urandom(KEY_SIZE)


def new_nonce() -> bytes:
    """A fresh random 96-bit GCM nonce."""
    return _urandom(NONCE_SIZE)


class Sealer:
    """AES-256-GCM under one key.

    Build one per data key and reuse it: constructing the AESGCM object expands the key
    schedule, which should happen once per session, not once per record.
    """

    __slots__ = ("_decrypt", "_encrypt")

    def __init__(self, key: bytes) -> None:
        # A wrong-sized key is a programming error, not tampering, so it is not IntegrityError;
        # the module-level ``open`` still maps it to IntegrityError to keep that path opaque.
        if len(key) != KEY_SIZE:
            raise ValueError(f"AES-256 key must be {KEY_SIZE} bytes, got {len(key)}")
        aead = AESGCM(key)
        # Bound methods avoid two attribute lookups on the hot path.
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt

    def seal(
        self, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Encrypt and authenticate; returns ``(nonce, ciphertext || tag)``.

        ``nonce`` is for test vectors only: with random 96-bit nonces a key can safely seal far
        more records than any session produces, whereas a caller-chosen nonce reused once under
        the same key breaks both confidentiality and authenticity.
        """
        if nonce is None:
            nonce = _urandom(NONCE_SIZE)
        elif len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
        return nonce, self._encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Authenticate and decrypt, or raise the opaque ``IntegrityError``."""
        if len(nonce) != NONCE_SIZE or len(ciphertext) < TAG_SIZE:
            raise IntegrityError()
        try:
            return self._decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError, TypeError, OverflowError):
            # ``from None``: the cause would tell an attacker which check failed.
            raise IntegrityError() from None


def permute_blocks(key: bytes, blocks: bytes) -> bytes:
    """AES-256 of each 16-byte block of ``blocks`` under ``key`` (ECB: one call for them all).

    A keyed pseudo-random permutation of blocks, not encryption: equal blocks give equal
    outputs, so it is only for inputs that are themselves uniform and distinct — the word
    filter's per-word HMAC material (auditagent/search/wordfilter.py), where it is the
    per-session PRF."""
    if len(key) != KEY_SIZE or len(blocks) % 16:
        raise ValueError("a 32-byte key and whole 16-byte blocks")
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(blocks) + enc.finalize()


def seal(
    key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None
) -> tuple[bytes, bytes]:
    """One-shot ``Sealer(key).seal(...)``; use a ``Sealer`` when sealing many records."""
    return Sealer(key).seal(plaintext, aad, nonce=nonce)


def open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """One-shot ``Sealer(key).open(...)``; any failure, a bad key included, is IntegrityError."""
    try:
        sealer = Sealer(key)
    except (ValueError, TypeError):
        raise IntegrityError() from None
    return sealer.open(nonce, ciphertext, aad)


def signing_key_generate() -> bytes:
    """A fresh Ed25519 private key as its raw 32-byte seed."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def signing_public_key(private: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key for a raw private key."""
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def sign(private: bytes, message: bytes) -> bytes:
    """A 64-byte Ed25519 signature."""
    return Ed25519PrivateKey.from_private_bytes(private).sign(message)


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True only for a valid signature; malformed keys or signatures give False, never raise.

    ``public`` must come from a trusted place (the keyring or a published copy): whoever picks
    the public key decides what verifies, and a few degenerate (small-order) keys accept
    signatures their holder never made.
    """
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- self-signed certificate for local simulators ---
# Used only by auditagent_demo to serve TLS on 127.0.0.1 (google-genai always dials
# wss). It lives here because building a certificate needs hazmat key types.


def self_signed_certificate(hostnames: list[str]) -> tuple[bytes, bytes]:
    """A short-lived self-signed P-256 certificate for ``hostnames`` as (cert_pem, key_pem).

    Names that parse as IP addresses become IP SANs, the rest DNS SANs. The certificate is
    its own trust anchor (CA:TRUE with key identifiers) so strict X.509 verification, as in
    recent Python versions, accepts it when loaded as ``cafile``.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hostnames:
        raise ValueError("at least one hostname is required")
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem
