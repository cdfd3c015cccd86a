"""The review API (installed as ``auditagent_api``)."""

from __future__ import annotations

from .main import create_app

__all__ = ["create_app"]
