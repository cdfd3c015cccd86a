"""Card data in text: card numbers by Luhn check, security codes and expiry dates by context.

A card number is 12-19 digits passing the Luhn check, written or spoken, anywhere in one text; a
16-digit number failing Luhn is an order or account number and stays. A security code is 3-4
digits, which means nothing alone: it is removed when named next to it ("CVV 123", "the three
digits on the back are ...") or when the agent just asked for it (``Expect.SECURITY_CODE``). The
same holds for an expiry ("expires twelve twenty-eight") and, in ``pii``, a date of birth.
"""

from __future__ import annotations

import re
from enum import Enum

from .hits import Hit
from .spoken import Item, Run, runs

CARD_MIN, CARD_MAX = 12, 19

_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, its digits summed


def luhn_valid(digits: str) -> bool:
    """``stdnum.luhn.is_valid`` for a decimal string, its sums in C: the digits' byte values
    summed, less ``ord("0")`` each (python-stdnum's is a loop of Python per digit)."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    rev = digits[::-1]
    total = sum(rev[0::2].encode()) + sum(rev[1::2].translate(_DOUBLED).encode())
    return (total - 48 * len(digits)) % 10 == 0


class Expect(str, Enum):
    """What the agent just asked the caller for."""

    CARD_NUMBER = "card_number"
    SECURITY_CODE = "security_code"
    EXPIRY = "expiry"
    DATE_OF_BIRTH = "date_of_birth"
    NATIONAL_ID = "national_id"


ASKS: dict[Expect, re.Pattern[str]] = {
    Expect.CARD_NUMBER: re.compile(
        r"card number|number on (?:the|your) card|long number|\bpan\b|(?:credit|debit) card",
        re.I,
    ),
    Expect.SECURITY_CODE: re.compile(
        r"security code|\bcv[vc]2?\b|\bcsc\b|\bcid\b|verification (?:code|value|number)"
        r"|\b(?:three|four|3|4)[- ]digits?\b|digits on the back|back of (?:the|your) card",
        re.I,
    ),
    Expect.EXPIRY: re.compile(
        r"expir\w*|\bexp\b\.?|valid (?:thru|through|until)|good (?:thru|through)", re.I
    ),
    Expect.DATE_OF_BIRTH: re.compile(
        r"date of birth|birth ?date|birthday|\bd\.?o\.?b\b|\bborn\b", re.I
    ),
    Expect.NATIONAL_ID: re.compile(
        r"social security|\bssn\b|social insurance|\bsin\b|national (?:id|insurance)|tax id"
        r"|\bbsn\b|\bnhs number|aadhaar|\bcpf\b",
        re.I,
    ),
}
"""How an agent asks for, or anyone names, each kind."""

ASK_NEEDLES: dict[Expect, tuple[str, ...]] = {
    Expect.CARD_NUMBER: ("card number", "number on ", "long number", "pan", "it card"),
    Expect.SECURITY_CODE: (
        "security code",
        "cv",
        "csc",
        "cid",
        "verification ",
        "digit",
        "back of ",
    ),
    Expect.EXPIRY: ("exp", "valid ", "good "),
    Expect.DATE_OF_BIRTH: ("birth", "d.o", "do", "born"),
    Expect.NATIONAL_ID: (
        "social ",
        "ssn",
        "sin",
        "national ",
        "tax id",
        "bsn",
        "nhs number",
        "aadhaar",
        "cpf",
    ),
}
"""For each kind, lower-case strings one of which every match of ``ASKS[kind]`` in ASCII text
holds (lower-cased): without any, the pattern is not searched. Change both together."""


def names(kind: Expect, text: str, low: str | None) -> bool:
    """Whether ``ASKS[kind]`` is in ``text``; ``low``: the text lower-cased if it is ASCII (None
    otherwise: Unicode case folding makes the substring test unsafe)."""
    if low is not None and not any(n in low for n in ASK_NEEDLES[kind]):
        return False
    return ASKS[kind].search(text) is not None


TRIGGERS: dict[Expect, frozenset[str]] = {
    Expect.CARD_NUMBER: frozenset({"card", "pan", "long"}),
    Expect.SECURITY_CODE: frozenset(
        {
            "security",
            "cvv",
            "cvv2",
            "cvc",
            "cvc2",
            "csc",
            "cid",
            "verification",
            "digit",
            "digits",
            "card",
        }
    ),
    Expect.EXPIRY: frozenset(
        {"expires", "expire", "expiry", "expiration", "expiring", "expired", "exp", "valid", "good"}
    ),
    Expect.DATE_OF_BIRTH: frozenset({"birth", "birthday", "birthdate", "dob", "d", "born"}),
    Expect.NATIONAL_ID: frozenset(
        {"social", "ssn", "sin", "national", "tax", "bsn", "nhs", "aadhaar", "cpf"}
    ),
}
"""Words without which ``ASKS[kind]`` cannot match: a cheap screen before the pattern."""

_DATE_FILLERS = frozenset({"of", "the", "in", "on", "and", "st", "nd", "rd", "th"})
_WORD = re.compile(r"[^\W\d_]+")


def card_hits(text: str, found: list[Run]) -> list[Hit]:
    """Card numbers: a whole run of 12-19 digits passing Luhn; else the longest window of a run
    that passes, when it leaves out at most ``EDGE`` digits at either end (a run may carry a
    word said before or a code said after the number) or the run is longer than any card."""
    out: list[Hit] = []
    for run in found:
        items = run.items
        if items and items[0].digits == "0" and text[items[0].start].lower() == "o":
            items = items[1:]  # a leading "oh" is an interjection, not a zero
        for part in _split_at_months(items):
            out += _card_windows(part)
    return out


EDGE = 4
_NETWORKS = "23456"
"""First digits of the card networks (Mastercard 2-series and 5, Amex and Diners 3, Visa 4,
Discover, UnionPay and Maestro 6): a window inside a longer run must start with one."""


def _split_at_months(items: tuple[Item, ...]) -> list[tuple[Item, ...]]:
    parts: list[tuple[Item, ...]] = []
    cur: list[Item] = []
    for it in items:
        if it.month:
            if cur:
                parts.append(tuple(cur))
            cur = []
        else:
            cur.append(it)
    if cur:
        parts.append(tuple(cur))
    return parts


def _card_windows(items: tuple[Item, ...]) -> list[Hit]:
    lengths = [len(i.digits) for i in items]
    whole = sum(lengths)
    if whole < CARD_MIN:
        return []
    digits = "".join(i.digits for i in items)
    if whole <= CARD_MAX and luhn_valid(digits):
        return [Hit(items[0].start, items[-1].end, "card_number", digits=digits)]
    long_run = whole > CARD_MAX
    out: list[Hit] = []
    i = 0
    before = 0  # digits left out before window start i
    while i < len(items):
        if not long_run and before > EDGE:
            break
        best = None
        total = 0
        for j in range(i, len(items)):
            total += lengths[j]
            if total > CARD_MAX:
                break
            after = whole - before - total
            if total >= CARD_MIN + 1 and (long_run or after <= EDGE):
                cand = digits[before : before + total]
                if cand[0] in _NETWORKS and luhn_valid(cand):
                    best = (j, cand)
        if best is None:
            before += lengths[i]
            i += 1
            continue
        j, cand = best
        out.append(Hit(items[i].start, items[j].end, "card_number", digits=cand))
        before += sum(lengths[i : j + 1])
        i = j + 1
    return out


def _date_spans(
    text: str, start: int, *, limit: int | None, lo: int, hi: int, dated: list[Run] | None = None
) -> list[Hit]:
    """Date-like spans at or after ``start`` (the first only, within ``limit`` characters,
    when a limit is given): runs read with month names, joined across "of"/"the"/ordinal
    suffixes, holding ``lo``..``hi`` digits or a month name. ``dated``: those runs of
    ``text[start:]``, when already read."""
    found = runs(text[start:], months=True) if dated is None else dated
    spans: list[tuple[int, int, int, bool]] = []  # start, end, digits, has month
    for run in found:
        a, b = run.start + start, run.end + start
        n = len(run.digits)
        month = any(i.month for i in run.items)
        if spans:
            pa, pb, pn, pm = spans[-1]
            gap = _WORD.findall(text[pb:a])
            if (
                all(w.lower() in _DATE_FILLERS for w in gap)
                and len(text[pb:a]) <= 12
                and pn + n <= hi
            ):
                spans[-1] = (pa, b, pn + n, pm or month)
                continue
        spans.append((a, b, n, month))
    out = []
    for a, b, n, month in spans:
        if limit is not None and a - start > limit:
            break
        if lo <= n <= hi or (month and n <= hi):
            out.append(Hit(a, b, ""))
            if limit is not None:
                break
    return out


def named_hits(text: str, kinds: set[Expect]) -> list[Hit]:
    """Security codes, expiry dates, dates of birth named in the text itself."""
    out: list[Hit] = []
    for kind in kinds:
        for m in ASKS[kind].finditer(text):
            out.extend(_after_name(text, kind, m.start(), m.end()))
    return out


def _after_name(text: str, kind: Expect, a: int, b: int) -> list[Hit]:
    if kind is Expect.SECURITY_CODE:
        return _code_near(text, a, b)
    if kind is Expect.EXPIRY:
        return [Hit(h.start, h.end, "expiry") for h in _date_spans(text, b, limit=40, lo=3, hi=6)]
    if kind is Expect.DATE_OF_BIRTH:
        hits = _date_spans(text, b, limit=40, lo=4, hi=8)
        return [Hit(h.start, h.end, "date_of_birth") for h in hits]
    return []


def _code_near(text: str, a: int, b: int) -> list[Hit]:
    after = [r for r in runs(text[b:]) if r.start <= 40]
    for r in after:
        if 3 <= len(r.digits) <= 4:
            return [Hit(r.start + b, r.end + b, "security_code")]
    before = [r for r in runs(text[:a]) if a - r.end <= 25]
    for r in before[-1:]:
        if 3 <= len(r.digits) <= 4:
            return [Hit(r.start, r.end, "security_code")]
    return []


def answer_hits(
    text: str, expect: Expect, found: list[Run], dated: list[Run] | None = None
) -> list[Hit]:
    """What the caller's answer holds when the agent just asked for ``expect``; ``dated``:
    ``runs(text, months=True)`` when already read."""
    if expect is Expect.SECURITY_CODE:
        return [Hit(r.start, r.end, "security_code") for r in found if 3 <= len(r.digits) <= 4]
    if expect is Expect.CARD_NUMBER:
        # a card read out in parts over several utterances: each part goes
        return [Hit(r.start, r.end, "card_number") for r in found if len(r.digits) >= 4]
    if expect is Expect.EXPIRY:
        spans = _date_spans(text, 0, limit=None, lo=3, hi=6, dated=dated)
        return [Hit(h.start, h.end, "expiry") for h in spans]
    if expect is Expect.DATE_OF_BIRTH:
        hits = _date_spans(text, 0, limit=None, lo=4, hi=8, dated=dated)
        return [Hit(h.start, h.end, "date_of_birth") for h in hits]
    return [Hit(r.start, r.end, "national_id") for r in found if len(r.digits) >= 4]
