"""Settings: one pydantic-settings class, prefix ``AUDITAGENT_``, built explicitly by callers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TranscriptionPolicy = Literal["enforce", "warn", "off"]


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "auditagent"


class Settings(BaseSettings):
    """Everything auditagent reads from its environment.

    Build it with ``Settings()`` (environment) or ``Settings(database_url=...)`` (explicit);
    nothing in the package builds one at import time.
    """

    model_config = SettingsConfigDict(env_prefix="AUDITAGENT_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="Postgres URL. Unset: an embedded Postgres is started in data_dir/pg.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Embedded Postgres, keyring, spool and checkpoints live here (mode 0700).",
    )
    keyring_path: Path | None = Field(
        default=None,
        description="Local master keyring file (0600). Default: data_dir/keyring.json.",
    )
    spool_dir: Path | None = Field(
        default=None, description="Durable spool for sealed records. Default: data_dir/spool."
    )
    checkpoint_dir: Path | None = Field(
        default=None,
        description="Signed checkpoint sink outside the database. Default: data_dir/checkpoints.",
    )
    transcription_policy: TranscriptionPolicy = Field(
        default="enforce", description="Realtime models without transcription: enforce|warn|off."
    )
    record_interims: bool = Field(default=False, description="Also record interim transcripts.")
    queue_size: int = Field(
        default=20_000, ge=100, description="In-memory records before spooling."
    )
    batch_size: int = Field(default=500, ge=1, description="Records per database write.")
    flush_interval: float = Field(default=0.25, gt=0, description="Seconds between writes.")
    db_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to wait for a connection, a probe or a spool replay before giving up.",
    )
    durable_within: float = Field(
        default=1.0,
        gt=0,
        description="Every record handed to the recorder is committed, or fsynced to the spool, "
        "within this many seconds, whatever the database does.",
    )
    db_app_role: str | None = Field(
        default=None,
        description="Database role the recorder/API run as; migrations grant it no UPDATE/DELETE "
        "on append-only tables.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    retention_default_days: int = Field(default=2190, ge=1, description="Default policy: 6 years.")
    retention_floor_days: int = Field(
        default=365, ge=0, description="No policy may keep records for fewer days."
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix) :]
        if not v.startswith("postgresql+psycopg://"):
            raise ValueError(
                "expected a Postgres URL such as postgresql://user@host:5432/dbname"
                " (or unset it to use the embedded Postgres)"
            )
        return v

    @property
    def resolved_keyring_path(self) -> Path:
        return self.keyring_path or self.data_dir / "keyring.json"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"
