"""Digits as speech-to-text writes them: "4111 1111", "four one one one", "forty-one eleven",
"double one", "oh" for zero, "four hundred eleven".

A text is cut into *runs*: numeric items (digit groups and number words) separated only by
spacing, punctuation that STT puts between groups (``, . - / :``) or fillers ("uh", "um"). Each
item keeps its span in the original text, so a detector that finds a card number in a run's
digits can replace exactly the words that said it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import accumulate, compress
from operator import or_
from typing import NamedTuple

from .native import wanted

UNITS: dict[str, str] = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nil": "0",
    "nought": "0",
    "naught": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
TEENS: dict[str, str] = {
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
}
TENS: dict[str, str] = {
    "twenty": "2",
    "thirty": "3",
    "forty": "4",
    "fourty": "4",
    "fifty": "5",
    "sixty": "6",
    "seventy": "7",
    "eighty": "8",
    "ninety": "9",
}
ORDINAL_UNITS: dict[str, str] = {
    "first": "1",
    "second": "2",
    "third": "3",
    "fourth": "4",
    "fifth": "5",
    "sixth": "6",
    "seventh": "7",
    "eighth": "8",
    "ninth": "9",
}
ORDINALS: dict[str, str] = {
    **{k: "0" + v for k, v in ORDINAL_UNITS.items()},
    "tenth": "10",
    "eleventh": "11",
    "twelfth": "12",
    "thirteenth": "13",
    "fourteenth": "14",
    "fifteenth": "15",
    "sixteenth": "16",
    "seventeenth": "17",
    "eighteenth": "18",
    "nineteenth": "19",
    "twentieth": "20",
    "thirtieth": "30",
}
MONTHS: dict[str, str] = {
    name: f"{i:02d}"
    for i, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
REPEAT: dict[str, int] = {"double": 2, "triple": 3}
FILLERS = frozenset({"uh", "um", "umm", "er", "erm", "ah", "hmm", "mm"})

NUMBER_WORDS: frozenset[str] = frozenset(
    {*UNITS, *TEENS, *TENS, *ORDINALS, *REPEAT, "hundred"} - {"o"}
)
"""Words that make a text worth tokenizing (``o`` alone is too common to be a trigger)."""

_TOKEN = re.compile(r"\d+|[^\W\d_]+")
_GAP = re.compile(r"[\s,.\-\u2013\u2014/:]*")
# Between the two words of one number ("forty-one", "forty one"): a hyphen or spacing only.
_TIGHT = re.compile(r"[\s\-\u2013]*")
_AND = re.compile(r"[\s\-]*(?:and[\s\-]+)?", re.I)


class Item(NamedTuple):
    """One number said or written: its digits and where it is in the text.

    A named tuple: a spoken card makes one per word, and this is the cheapest object to build."""

    digits: str
    start: int
    end: int
    month: bool = False
    ordinal: bool = False


class Run(NamedTuple):
    """Numeric items in a row, with nothing but spacing, light punctuation or fillers between:
    their digits and span, worked out once (``of`` makes one)."""

    items: tuple[Item, ...]
    digits: str
    start: int
    end: int

    @classmethod
    def of(cls, items: list[Item] | tuple[Item, ...]) -> Run:
        return cls(tuple(items), "".join([i.digits for i in items]), items[0].start, items[-1].end)


class _Tok(NamedTuple):
    text: str
    low: str
    start: int
    end: int


_DIGITS = re.compile(r"\d+")
# _TOKEN on lower-cased ASCII text, kept with what lies between by re.split
_SPLIT_TOKENS = re.compile(r"(\d+|[a-z]+)")
VOCAB: frozenset[str] = frozenset({*UNITS, *TEENS, *TENS, *ORDINALS, *REPEAT, "hundred"})
_MONTH_NAMES: frozenset[str] = frozenset(MONTHS)
_VOCAB_MONTHS: frozenset[str] = VOCAB | _MONTH_NAMES


def _tokens(text: str, *, months: bool, words: bool) -> list[_Tok]:
    """The numeric tokens only (digit groups, number words, month names if asked): what lies
    between two of them is judged by ``_joined``, so other words need no object."""
    if words and text.isascii():
        return _ascii_tokens(text, _VOCAB_MONTHS if months else VOCAB)
    return _any_tokens(text, months=months, words=words)


def _any_tokens(text: str, *, months: bool, words: bool) -> list[_Tok]:
    """``_tokens`` of any text, one word at a time."""
    if not words:
        return [_Tok(m.group(), m.group(), m.start(), m.end()) for m in _DIGITS.finditer(text)]
    out = []
    for m in _TOKEN.finditer(text):
        t = m.group()
        low = t.lower()
        if low in VOCAB or t.isdecimal() or (months and low in MONTHS):
            out.append(_Tok(t, low, m.start(), m.end()))
    return out


def _ascii_tokens(text: str, keep: frozenset[str]) -> list[_Tok]:
    """``_tokens`` of an ASCII text with its loops in C: the words of the lower-cased text are
    the lower-cased words of the text, one split gives them with what lies between (their
    offsets by a running sum), and only the kept ones become objects."""
    low = text.lower()
    parts = _SPLIT_TOKENS.split(low)  # between, token, between, token, ..., between
    toks = parts[1::2]
    if keep.isdisjoint(toks):  # no number said in words: the digit groups alone
        return [_Tok(m.group(), m.group(), m.start(), m.end()) for m in _DIGITS.finditer(text)]
    ends = list(accumulate(map(len, parts)))
    kept = compress(
        range(len(toks)), map(or_, map(keep.__contains__, toks), map(str.isdecimal, toks))
    )
    return [
        _Tok(text[ends[2 * k] : ends[2 * k + 1]], toks[k], ends[2 * k], ends[2 * k + 1])
        for k in kept
    ]


def _tight(text: str, a: _Tok, b: _Tok) -> bool:
    return _TIGHT.fullmatch(text, a.end, b.start) is not None


def _item_at(text: str, toks: list[_Tok], i: int, *, months: bool) -> tuple[Item | None, int]:
    """The numeric item starting at token ``i`` and the index after it (None: not numeric)."""
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    w = t.low
    if t.text.isdecimal():
        if t.text.isascii():
            return Item(t.text, t.start, t.end), i + 1
        return Item(str(int(t.text)), t.start, t.end), i + 1
    if w in REPEAT and nxt is not None and _tight(text, t, nxt):
        d = UNITS.get(nxt.low) or (nxt.text if nxt.text.isdecimal() and len(nxt.text) == 1 else "")
        if d:
            return Item(d * REPEAT[w], t.start, nxt.end), i + 2
        return None, i + 1
    if w in UNITS:
        if _starts_hundred(text, toks, i):
            return _hundred(text, toks, i, UNITS[w])
        return Item(UNITS[w], t.start, t.end), i + 1
    if w in TEENS:
        return Item(TEENS[w], t.start, t.end), i + 1
    if w in TENS:
        if nxt is not None and _tight(text, t, nxt):
            if nxt.low in UNITS and nxt.low not in ("oh", "o", "zero", "nil", "nought", "naught"):
                return Item(TENS[w] + UNITS[nxt.low], t.start, nxt.end), i + 2
            if nxt.low in ORDINAL_UNITS:
                d = TENS[w] + ORDINAL_UNITS[nxt.low]
                return Item(d, t.start, nxt.end, ordinal=True), i + 2
        return Item(TENS[w] + "0", t.start, t.end), i + 1
    if w in ORDINALS:
        return Item(ORDINALS[w], t.start, t.end, ordinal=True), i + 1
    if months and w in MONTHS:
        return Item(MONTHS[w], t.start, t.end, month=True), i + 1
    return None, i + 1


def _starts_hundred(text: str, toks: list[_Tok], i: int) -> bool:
    """Whether token ``i`` begins "<unit> hundred" (a repeat word is read as a repeat)."""
    t = toks[i]
    if t.low not in UNITS or t.low in REPEAT or t.low in ("oh", "o") or i + 1 >= len(toks):
        return False
    nxt = toks[i + 1]
    return nxt.low == "hundred" and _tight(text, t, nxt)


def _hundred(text: str, toks: list[_Tok], i: int, unit: str) -> tuple[Item, int]:
    start = toks[i].start
    j = i + 2  # past "hundred"
    end = toks[i + 1].end
    # A rest that is itself "<unit> hundred ..." has three digits or more, which is never taken:
    # it is not read, so "one hundred and one hundred and ..." costs no recursion.
    if (
        j < len(toks)
        and _AND.fullmatch(text, end, toks[j].start)
        and not _starts_hundred(text, toks, j)
    ):
        rest, k = _item_at(text, toks, j, months=False)
        if rest is not None and len(rest.digits) <= 2 and not rest.ordinal:
            return Item(unit + rest.digits.zfill(2), start, rest.end), k
    return Item(unit + "00", start, end), i + 2


def runs(text: str, *, months: bool = False, words: bool = True) -> list[Run]:
    """Every run of numbers in ``text``, in order. ``months`` also reads month names as
    two digits (for dates: "December twenty twenty-eight" -> 12 2028); ``words=False`` is for
    a text known to hold no number word (digit groups only, much cheaper). ASCII text is read
    by the C module when built (``native_runs``), with the same result."""
    if _native_runs is not None:
        got = _native_runs(text, months, words)
        if got is not None:
            return got
    return py_runs(text, months=months, words=words)


def py_runs(text: str, *, months: bool = False, words: bool = True) -> list[Run]:
    """``runs`` in Python, for any text."""
    toks = _tokens(text, months=months, words=words or months)
    out: list[Run] = []
    cur: list[Item] = []
    i = 0
    n = len(toks)
    while i < n:
        item, nxt = _item_at(text, toks, i, months=months)
        if item is None:
            if toks[i].low in FILLERS and cur:
                i = nxt
                continue
            if cur:
                out.append(Run.of(cur))
                cur = []
            i = nxt
            continue
        if cur and not _joined(text, cur[-1].end, item.start):
            out.append(Run.of(cur))
            cur = []
        cur.append(item)
        i = nxt
    if cur:
        out.append(Run.of(cur))
    return out


def runs_and_dated(text: str, *, words: bool) -> tuple[list[Run], list[Run]]:
    """``runs(text, words=words)`` and ``runs(text, months=True)``, read once where they are
    the same: an ASCII text naming no month and no number in words (or read with them)."""
    if _native_runs is not None and text.isascii():  # both readings are cheap in C
        return runs(text, words=words), runs(text, months=True)
    if text.isascii():
        toks = _SPLIT_TOKENS.findall(text.lower())
        if _MONTH_NAMES.isdisjoint(toks) and (words or VOCAB.isdisjoint(toks)):
            found = runs(text, words=words)
            return found, found
    return runs(text, words=words), runs(text, months=True)


def _joined(text: str, a: int, b: int) -> bool:
    """Whether only spacing, light punctuation and fillers stand between ``a`` and ``b``."""
    if b - a > 24:  # longer than any separator with a filler or two
        return False
    gap = text[a:b]
    if _GAP.fullmatch(gap):
        return True
    words = [w.lower() for w in _TOKEN.findall(gap)]
    if not words or any(w not in FILLERS for w in words):
        return False
    return _GAP.fullmatch(_TOKEN.sub("", gap)) is not None


def may_hold_numbers(low_words: set[str]) -> bool:
    """Cheap test on a text's lower-cased words: could it say a number in words?"""
    return not NUMBER_WORDS.isdisjoint(low_words)


# The vocabulary for the C reader (auditagent/redaction/_spoken.c): word -> (flags, value).
_W_UNIT, _W_TEEN, _W_TEN, _W_ORD_UNIT, _W_ORDINAL, _W_MONTH, _W_REPEAT, _W_HUNDRED = (
    1, 2, 4, 8, 16, 32, 64, 128)  # fmt: skip
_W_ZEROISH, _W_OH = 256, 512


def native_vocabulary() -> list[tuple[str, int, str | int]]:
    """(word, flag, value), one per table a word is in."""
    out: list[tuple[str, int, str | int]] = []
    for table, flag in ((UNITS, _W_UNIT), (TEENS, _W_TEEN), (TENS, _W_TEN),
                        (ORDINAL_UNITS, _W_ORD_UNIT), (ORDINALS, _W_ORDINAL), (MONTHS, _W_MONTH),
                        (REPEAT, _W_REPEAT)):  # fmt: skip
        out += [(word, flag, value) for word, value in table.items()]
    out += [(w, _W_ZEROISH, "") for w in ("oh", "o", "zero", "nil", "nought", "naught")]
    out += [(w, _W_OH, "") for w in ("oh", "o")]
    out.append(("hundred", _W_HUNDRED, ""))
    return out


def _load_native() -> Callable[[str, bool, bool], list[Run] | None] | None:
    if not wanted():
        return None
    try:
        from ._spoken import init as c_init
        from ._spoken import runs as c_runs
    except ImportError:  # pragma: no cover - depends on the build
        return None
    c_init(Item, Run, native_vocabulary())
    return c_runs


_native_runs = _load_native()
"""The C reader (None: not built, or ``AUDITAGENT_REDACTION_NATIVE=0`` when this module was
imported); tests set it to None to read in Python."""
