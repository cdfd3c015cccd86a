"""Small Core pieces the store modules share."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, bindparam
from sqlalchemy.dialects.postgresql import ARRAY, UUID


def uuid_array(ids: Iterable[uuid.UUID]) -> BindParameter[Any]:
    """One array parameter for ``column = ANY(...)``: an IN list would bind one parameter per
    id, and a verifier may ask about more sessions than a statement can carry."""
    return bindparam(None, list(ids), type_=ARRAY(UUID(as_uuid=True)))
