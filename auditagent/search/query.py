"""Parsing a search: words and "quoted phrases", every clause required.

Bad input is a :class:`QueryError` naming the rule it broke (the API answers 422 with it):
the query text never reaches SQL, only beacons of its words do, but a query that cannot mean
what its author meant (a wildcard, SQL, an unclosed quote) is refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from auditagent.errors import AuditagentError

from .tokens import STOPWORDS, is_indexed, words

__all__ = [
    "MAX_QUERY_CHARS",
    "QUERY_PATTERN",
    "Clause",
    "Query",
    "QueryError",
    "parse_query",
]

MAX_QUERY_CHARS = 256

# Characters with a meaning in LIKE, regular expressions or shells.
_WILDCARDS = frozenset("*%?")
# Characters that only appear in code, SQL or markup, never in a spoken phrase.
_SYNTAX = re.compile(r"[;=<>(){}\[\]\\|`$^~]|--|/\*|\*/")
_QUOTED = re.compile(r'"([^"]*)"')


def _stopword(w: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in w)


_FORBIDDEN = r'"\x00-\x1f\x7f*%?;=<>(){}\[\]\\|`$^~'
QUERY_PATTERN = (
    r"^(?=.*[^\W_])"  # a word
    + r"(?![\W_]*(?:(?:"
    + "|".join(_stopword(w) for w in sorted(STOPWORDS, key=lambda w: (-len(w), w)))
    + r")(?![^\W_])[\W_]*)+$)"  # not only common words
    + r"(?!.*--)"
    + rf'(?:[^{_FORBIDDEN}]|"[^{_FORBIDDEN}]*")*$'
)
"""What :func:`parse_query` accepts, as one regular expression (Python ``re`` syntax) for the
OpenAPI document, up to Unicode normalisation (the full-width form of ``the`` is a common word
to the parser, not to the pattern) and the length limit, which the schema states on its own."""


class QueryError(AuditagentError):
    """A search the parser refuses; ``rule`` is a stable identifier of the rule broken."""

    def __init__(self, rule: str, message: str, *, fix: str) -> None:
        self.rule = rule
        super().__init__(message, fix=fix)


@dataclass(frozen=True)
class Clause:
    """One required part: a single word, or a phrase (words in this order, adjacent)."""

    words: tuple[str, ...]
    phrase: bool

    @property
    def indexed(self) -> tuple[str, ...]:
        """The words with index rows; an all-stopword phrase has none."""
        return tuple(w for w in self.words if is_indexed(w))


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]

    @property
    def indexed_words(self) -> frozenset[str]:
        return frozenset(w for c in self.clauses for w in c.indexed)

    def canonical(self) -> str:
        """One spelling per meaning (what the access log keys), e.g. ``"a b" c``."""
        return " ".join(f'"{" ".join(c.words)}"' if c.phrase else c.words[0] for c in self.clauses)


def _fix() -> str:
    return 'search for whole words, or a "quoted phrase"'


def parse_query(text: str) -> Query:
    """The clauses of ``text``; ``QueryError`` for input no search can honour."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            "query-too-long",
            f"a search is at most {MAX_QUERY_CHARS} characters, this one has {len(text)}",
            fix="shorten it to the words that matter",
        )
    if not text.strip():
        raise QueryError("query-empty", "the search is empty", fix="give at least one word")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise QueryError(
            "query-control-characters", "the search has control characters", fix=_fix()
        )
    if _WILDCARDS & set(text):
        raise QueryError(
            "query-wildcard",
            "wildcards (* % ?) are not supported: the index matches whole words only",
            fix="spell the word out in full",
        )
    if _SYNTAX.search(text):
        raise QueryError(
            "query-syntax",
            "the search contains code or SQL syntax (; = < > ( ) -- /* and the like)",
            fix=_fix(),
        )
    if text.count('"') % 2:
        raise QueryError("query-unbalanced-quote", "a quoted phrase is not closed", fix=_fix())

    clauses: list[Clause] = []
    seen: set[tuple[tuple[str, ...], bool]] = set()

    def add(ws: tuple[str, ...], phrase: bool) -> None:
        if (ws, phrase) not in seen:
            seen.add((ws, phrase))
            clauses.append(Clause(ws, phrase))

    rest = _QUOTED.sub(" ", text)
    for m in _QUOTED.finditer(text):
        ws = tuple(w.text for w in words(m.group(1)))
        if len(ws) == 1:
            add(ws, False)
        elif ws:
            add(ws, True)
    for word in words(rest):
        if is_indexed(word.text):
            add((word.text,), False)
    if not any(c.indexed for c in clauses):
        raise QueryError(
            "query-only-common-words",
            "the search has only common words, which are not indexed",
            fix='add a distinctive word, or quote a phrase with one ("refund the fee")',
        )
    return Query(tuple(clauses))
