"""Alembic migrations, installed as ``auditagent_migrations``."""
