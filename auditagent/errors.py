"""Errors a user sees. Each carries a one-line message that names the fix."""

from __future__ import annotations


class AuditagentError(Exception):
    """An expected failure: the CLI prints ``str(err)`` on one line and exits non-zero.

    ``fix`` names what the user should do; it is part of the message.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message}; {fix}" if fix else message)


class ConfigError(AuditagentError):
    """Settings, keyring or environment are wrong."""


class KeyringError(ConfigError):
    """The keyring file is missing, unreadable, too open or lacks a key version."""


class DatabaseUnavailable(AuditagentError):
    """The database cannot be reached."""


class SchemaOutOfDate(AuditagentError):
    """The database schema is older (or newer) than this code."""

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"database schema is at {current or 'nothing'}, this code needs {head}",
            fix="run `auditagent db upgrade`",
        )


class IntegrityError(AuditagentError):
    """A sealed record or wrapped key failed authentication.

    Deliberately opaque: it never says whether the key, the nonce, the associated data or
    the ciphertext was wrong, so it cannot be used as an oracle.
    """

    def __init__(self) -> None:
        super().__init__("integrity check failed")


class TranscriptionDisabled(AuditagentError):
    """A realtime model will not produce the text a compliance record needs."""


class NotFound(AuditagentError):
    pass


class Conflict(AuditagentError):
    pass
