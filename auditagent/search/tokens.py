"""Words as the search index sees them: Unicode NFKC, case folded, punctuation stripped.

The writer (indexing), the query parser and the confirm step all go through :func:`words`, so
a word is cut the same way wherever it is compared. A word is a run of characters Python's
``re`` calls word characters, less the underscore: ``transfer_funds`` is the two words
``transfer funds`` on both sides, so a tool name is found by itself or as a phrase.

Limitation: scripts written without spaces (Chinese, Japanese, Thai) are cut only at
punctuation, so a search there matches whole runs of text, not single words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "STOPWORDS",
    "Word",
    "encode",
    "index_words",
    "index_words_of",
    "is_indexed",
    "normalize",
    "words",
]

_RAW = re.compile(r"[^\W_]+")

# Common English function words and single letters: they are in nearly every call, so an
# index row for them would say nothing about a session while costing one row per session.
# They still match inside a quoted phrase (the confirm step reads the decrypted text).
_STOPWORD_LIST = """
    a b c d e f g h i j k l m n o p q r s t u v w x y z
    about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing don down during each few
    for from further had has have having he her here hers herself him himself his how
    if in into is it its itself just let me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves yes ok okay oh um uh hmm yeah im ive ill
    youre dont cant isnt wont thats whats theres lets re ve ll
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())
STOPWORDS_UTF8 = frozenset(w.encode() for w in STOPWORDS)


@dataclass(frozen=True, slots=True)
class Word:
    """A normalized word and where its raw form is in the original text."""

    text: str
    start: int
    end: int


def normalize(raw: str) -> str:
    """NFKC then case fold; ASCII takes a shortcut (both are then just ``lower``)."""
    if raw.isascii():
        return raw.lower()
    return unicodedata.normalize("NFKC", raw).casefold()


def words(text: str) -> list[Word]:
    """Every word of ``text`` in order, stopwords included (phrases need them)."""
    out: list[Word] = []
    for m in _RAW.finditer(text):
        raw = m.group()
        norm = normalize(raw)
        if norm.isalnum():
            out.append(Word(norm, m.start(), m.end()))
            continue
        # NFKC can turn one raw word into several (a fraction slash, a ligature with a mark):
        # cut it again, every part keeping the raw word's span.
        out.extend(Word(part, m.start(), m.end()) for part in _RAW.findall(norm))
    return out


def is_indexed(word: str) -> bool:
    return word not in STOPWORDS


# ASCII letters and digits stay, every other ASCII byte becomes a space: for ASCII text,
# lowering then splitting on these spaces cuts exactly the words :func:`words` finds.
_ASCII_CUT = bytes.maketrans(
    bytes(range(128)), bytes(c if chr(c).isalnum() else 0x20 for c in range(128))
)


def index_words(text: str) -> set[bytes]:
    """The distinct words of ``text`` that get index rows, UTF-8 encoded (what is keyed).

    The writer's path, so ASCII text (most of it) is cut by byte translation in C rather than
    word by word; the result is the same as :func:`words` gives (a test holds them together)."""
    if text.isascii():
        found = set(text.lower().encode("ascii").translate(_ASCII_CUT).split())
        found -= STOPWORDS_UTF8
        return found
    return {encode(w.text) for w in words(text) if is_indexed(w.text)}


def index_words_of(texts: list[str]) -> set[bytes]:
    """The union of :func:`index_words` over ``texts``: the ASCII ones joined by a space and cut
    in one pass (a space only separates words, so the words are the same), the rest one by one.
    The writer's hand-over: the Python work per text record is then a list append."""
    plain = [t for t in texts if t.isascii()]
    found: set[bytes] = set()
    if plain:
        found = set(" ".join(plain).lower().encode("ascii").translate(_ASCII_CUT).split())
        found -= STOPWORDS_UTF8
    if len(plain) < len(texts):
        for t in texts:
            if not t.isascii():
                found |= index_words(t)
    return found


def encode(word: str) -> bytes:
    """A word as it is keyed (a lone surrogate, which a provider may send, survives)."""
    return word.encode("utf-8", "surrogatepass")
