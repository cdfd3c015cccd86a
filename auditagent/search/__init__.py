"""Search over encrypted transcripts: a keyed blind index of words, confirmed by decryption.

The flow: :mod:`.tokens` cuts text into words; :mod:`.beacons` turns each word into a
truncated HMAC under the tenant's search key (:meth:`auditagent.keys.KeyProvider.search_key`);
the recorder's writer stores those (``auditagent.store.search_index``); :mod:`.query` parses a
search; :mod:`.service` finds candidate sessions by beacon and :mod:`.confirm` keeps only the
ones whose decrypted text really matches. docs/search.md explains the choices.
"""

from __future__ import annotations

from .beacons import BEACON_BITS, BeaconKey
from .confirm import Hit
from .query import Clause, Query, QueryError, parse_query
from .service import SearchPage, SearchResult, query_mac, search
from .texts import ROLES, Role

__all__ = [
    "BEACON_BITS",
    "ROLES",
    "BeaconKey",
    "Clause",
    "Hit",
    "Query",
    "QueryError",
    "Role",
    "SearchPage",
    "SearchResult",
    "parse_query",
    "query_mac",
    "search",
]
