"""The confirm step: the index only nominates sessions; the decrypted text decides.

Beacons collide by design, so a candidate session may not contain the words at all. Every
answer is checked here against the records themselves, which is why a result never holds a
false positive: a session is a match only when each clause of the query is found, and each
hit carries a snippet cut from the text it was found in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from auditagent.records import Record

from .query import Query
from .texts import Role, record_texts, role_of_kind
from .tokens import Word, words

__all__ = ["Hit", "SessionMatch", "match_session", "snippet"]

SNIPPET_CONTEXT = 60
"""Characters kept on each side of the match."""
MAX_HITS = 5
"""Hits listed per session; the count says how many there were."""


@dataclass(frozen=True)
class Hit:
    seq: int
    role: Role
    at: datetime
    snippet: str
    match_start: int
    """Offset of the matched words in ``snippet`` (for highlighting)."""
    match_end: int


@dataclass
class SessionMatch:
    hits: list[Hit] = field(default_factory=list)
    hit_count: int = 0
    found: set[int] = field(default_factory=set)
    """Indexes of the query's clauses found somewhere in the session."""


def snippet(text: str, start: int, end: int) -> tuple[str, int, int]:
    """``text`` around ``[start, end)``, cut at spaces, with … where it was cut."""
    lo = max(0, start - SNIPPET_CONTEXT)
    hi = min(len(text), end + SNIPPET_CONTEXT)
    if lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    offset = len(prefix) + start - lo
    return prefix + text[lo:hi] + suffix, offset, offset + end - start


def _find(clause_words: tuple[str, ...], ws: list[Word]) -> tuple[int, int] | None:
    n = len(clause_words)
    first = clause_words[0]
    for i in range(len(ws) - n + 1):
        if ws[i].text == first and all(ws[i + k].text == clause_words[k] for k in range(1, n)):
            return ws[i].start, ws[i + n - 1].end
    return None


def match_record(query: Query, text: str) -> tuple[set[int], tuple[int, int] | None]:
    """Which clauses ``text`` holds, and the span of the first one found."""
    # Most records of a candidate session hold none of the words (that is what a collision
    # is): for ASCII text, where lowering is exactly what the tokenizer does to each word, a
    # substring test rules them out before the text is cut into words.
    if text.isascii():
        low = text.lower()
        if not any(c.words[0] in low for c in query.clauses):
            return set(), None
    ws = words(text)
    found: set[int] = set()
    span: tuple[int, int] | None = None
    for i, clause in enumerate(query.clauses):
        where = _find(clause.words, ws)
        if where is not None:
            found.add(i)
            if span is None or where[0] < span[0]:
                span = where
    return found, span


def match_session(
    query: Query, opened: Iterable[tuple[int, datetime, Record]], *, role: Role | None
) -> SessionMatch | None:
    """The session's hits if every clause is found in its records (of ``role``), else None."""
    result = SessionMatch()
    for seq, at, record in opened:
        r = role_of_kind(record.kind)
        if r is None or (role is not None and r != role):
            continue
        hit: Hit | None = None
        for text in record_texts(record):
            found, span = match_record(query, text)
            if span is None:
                continue
            result.found |= found
            if hit is None:
                cut, s, e = snippet(text, *span)
                hit = Hit(seq, r, at, cut, s, e)
        if hit is not None:
            result.hit_count += 1
            if len(result.hits) < MAX_HITS:
                result.hits.append(hit)
    if len(result.found) < len(query.clauses):
        return None
    return result
