"""Alembic environment. The URL comes from auditagent's settings, never from alembic.ini."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection

from auditagent.settings import Settings
from auditagent.store.db import make_engine, resolve_database_url
from auditagent.store.models import Base
from auditagent.store.partitions import is_partition_name

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # Month and default partitions are created at run time (store/partitions.py), not modelled.
    return not (type_ == "table" and reflected and name is not None and is_partition_name(name))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=False,
        transaction_per_migration=False,
    )


def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None:
        # Tests and `auditagent db upgrade` pass their own connection: one transaction.
        _configure(shared)
        with context.begin_transaction():
            context.run_migrations()
        return
    settings = config.attributes.get("settings") or Settings()
    url = config.attributes.get("url") or resolve_database_url(settings)
    engine = make_engine(settings, url=url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `auditagent db upgrade`")
run_migrations_online()
