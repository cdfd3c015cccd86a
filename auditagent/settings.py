"""Settings: one pydantic-settings class, prefix ``AUDITAGENT_``, built explicitly by callers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .period import RetentionPeriod

TranscriptionPolicy = Literal["enforce", "warn", "off"]


def _period(data: dict[str, Any], prefix: str, fallback: RetentionPeriod) -> RetentionPeriod:
    parts = {k: data.get(f"{prefix}_{k}") for k in ("years", "months", "days")}
    if all(v is None for v in parts.values()):
        return fallback
    return RetentionPeriod.of(**parts)


def _floor_period(data: dict[str, Any], days: int | None) -> RetentionPeriod:
    return _period({**data, "retention_floor_days": days}, "retention_floor", RetentionPeriod(1))


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
    search_index: bool = Field(
        default=True,
        description="The writer adds keyed word beacons for search (docs/search.md).",
    )
    record_audio: bool | None = Field(
        default=None,
        description="Record the call's audio (both sides, sealed in chunks). Unset: on when the "
        "session has audio input or output.",
    )
    redaction: Literal["pci", "pii", "off"] = Field(
        default="pci",
        description="What is removed from every text before it is sealed: pci (card numbers, "
        "security codes, expiry dates), pii (pci plus national ids, phone numbers, email "
        "addresses, IBANs, dates of birth) or off. attach(redaction=...) overrides it.",
    )
    require_recording: bool = Field(
        default=False,
        description="Recording guarantee: attach refuses when neither the database nor the "
        "spool can be written; a call whose records can be kept nowhere is ended after "
        "recording_failed_line, and the next recorder that can writes a recording_failed record.",
    )
    recording_failed_line: str = Field(
        default="I'm sorry, this call cannot be recorded right now, so I have to end it here. "
        "Please call again later.",
        description="What the agent says before a call is ended because it cannot be recorded.",
    )
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
    # Retention in calendar terms. The default (where no policy matches) is the sum of the
    # parts given, 6 calendar years when none is; the floor (no policy, and not the default,
    # may keep records for less) is 1 calendar year when no part is given.
    retention_default_days: int | None = Field(
        default=None, ge=0, description="Default retention, days part (with no part: 6 years)."
    )
    retention_default_months: int | None = Field(
        default=None, ge=0, description="Default retention, months part."
    )
    retention_default_years: int | None = Field(
        default=None, ge=0, description="Default retention, years part."
    )
    retention_floor_months: int | None = Field(
        default=None, ge=0, description="Retention floor, months part."
    )
    retention_floor_years: int | None = Field(
        default=None, ge=0, description="Retention floor, years part."
    )
    retention_floor_days: int | None = Field(
        default=None,
        ge=0,
        validate_default=True,
        description="Retention floor, days part (with no part: 1 year). No policy may keep "
        "records for less, and a default under it is refused at start.",
    )
    retention_database_url: str | None = Field(
        default=None,
        description="Postgres URL for retention, holds and erasure (the owner role) when the "
        "recorder and API run as AUDITAGENT_DB_APP_ROLE. Default: database_url.",
    )

    @field_validator("retention_floor_days")
    @classmethod
    def _default_not_under_floor(cls, v: int | None, info: ValidationInfo) -> int | None:
        data = info.data
        default = _period(data, "retention_default", RetentionPeriod(years=6))
        floor = _floor_period(data, v)
        if default.empty:
            raise ValueError("the default retention is zero; set AUDITAGENT_RETENTION_DEFAULT_*")
        if not default.covers(floor):
            raise ValueError(
                f"the default retention ({default.describe()}) is shorter than the retention "
                f"floor ({floor.describe()}): raise AUDITAGENT_RETENTION_DEFAULT_DAYS "
                "(or _MONTHS / _YEARS) or lower the floor"
            )
        return v

    @field_validator("redaction", mode="before")
    @classmethod
    def _policy_name(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("database_url", "retention_database_url")
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

    @property
    def retention_default(self) -> RetentionPeriod:
        """Where no policy matches (6 calendar years unless set)."""
        return _period(self.__dict__, "retention_default", RetentionPeriod(years=6))

    @property
    def retention_floor(self) -> RetentionPeriod:
        """No policy, and not the default, keeps records for less (1 calendar year unless set)."""
        return _floor_period(self.__dict__, self.retention_floor_days)

    @property
    def resolved_retention_url(self) -> str | None:
        return self.retention_database_url or self.database_url
