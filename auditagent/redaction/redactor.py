"""Apply a redaction policy to text: find, merge, replace with typed placeholders.

``Redactor`` is stateless and holds the policy; ``Conversation`` adds what one conversation
needs: what the agent last asked for, so that "what is the security code?" followed by the
caller's "one two three" removes the answer although nothing in it names a security code.

Placeholders are typed and keep nothing the rules forbid: ``[card_number ****1111]`` (at most
the last four digits, PCI DSS 3.4.1; ``fp=...`` a keyed fingerprint when the policy asks),
``[security_code]``, ``[expiry]``, ``[phone]``, ... Callers get the count per kind, never a
value.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .cards import (
    ASKS,
    CARD_MAX,
    CARD_MIN,
    TRIGGERS,
    Expect,
    answer_hits,
    card_hits,
    named_hits,
    names,
)
from .hits import Hit, merge
from .personal import email_hits, iban_hits, national_id_hits, phone_hits
from .policy import PolicyLike, RedactionPolicy, resolve_policy
from .screen import KIND_BIT, native_scanner, py_scan, screen_words
from .spoken import Run, runs, runs_and_dated

Fingerprint = Callable[[str], str]
"""Card digits -> a short keyed token (never reversible without the key)."""

ASK_GRACE_S = 8.0
"""After the agent speaks again, a question it asked still covers answers given this long after:
a realtime model's transcript of the caller can arrive after the agent's next reply."""

_DEL_DIGITS = str.maketrans("", "", "0123456789")
SPOKEN_CARD_WORDS = 4
"""Number words from which a text is read for a card said in words (the fewest a 12-digit
number takes is six; four leaves room for digits and words mixed)."""
# Digits with only separators or fillers between: where a card number in digits can be.
_CLUSTER = re.compile(r"\d(?:[\d\s,.\-/]|\b(?:uh|um|umm|er|erm|ah)\b)*\d", re.I)
_SPLIT = str.maketrans({c: " " for c in "-,.;:!?\"'()[]{}/\\*"})

_NOTHING: dict[str, int] = {}
_DATES_ASKED = frozenset({Expect.EXPIRY, Expect.DATE_OF_BIRTH})


class Redacted(NamedTuple):
    """Text after redaction, and what was removed: kind -> count (never the values).

    A named tuple rather than a dataclass: one is made for every text the writer seals, and
    this is the cheapest object Python builds."""

    text: str
    removed: dict[str, int] = _NOTHING  # never mutated: add_counts writes into its first arg

    @property
    def changed(self) -> bool:
        return bool(self.removed)


def add_counts(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v
    return into


class Redactor:
    """One policy, applied to any text. Safe to share between conversations."""

    def __init__(
        self, policy: PolicyLike = None, *, fingerprint: Fingerprint | None = None
    ) -> None:
        self.policy: RedactionPolicy = resolve_policy(policy)
        self._fingerprint = fingerprint if self.policy.fingerprint else None
        p = self.policy
        self._context_kinds: set[Expect] = set()
        if p.security_codes:
            self._context_kinds.add(Expect.SECURITY_CODE)
        if p.expiry:
            self._context_kinds.add(Expect.EXPIRY)
        if p.dates_of_birth:
            self._context_kinds.add(Expect.DATE_OF_BIRTH)
        if p.national_ids:
            self._context_kinds.add(Expect.NATIONAL_ID)
        self._askable = set(self._context_kinds)
        if p.cards:
            self._askable.add(Expect.CARD_NUMBER)
        self._rules = [(r, r.compiled()) for r in p.rules]
        self._triggers: frozenset[str] = frozenset().union(
            *(TRIGGERS[k] for k in self._context_kinds)
        )
        # kinds found without any digit or number word in the text
        self._beyond_numbers = bool(p.emails or p.rules or p.dates_of_birth)
        self._ask_words: frozenset[str] = frozenset().union(*(TRIGGERS[k] for k in self._askable))
        self._trigger_bits = sum(KIND_BIT[k] for k in self._context_kinds)
        self._ask_bits = sum(KIND_BIT[k] for k in self._askable)
        # the C screen (None: absent, or switched off by AUDITAGENT_REDACTION_NATIVE=0)
        self._native = native_scanner()
        self._enabled = self.policy.enabled  # a frozen policy: its property, once
        self.quiet_mask = self._trigger_bits | self._ask_bits
        """Words with these ``WORD_BITS`` could name or ask for what the policy removes."""
        # JSON key name, inside a card object -> (key as kept, removed counts, kind it names):
        # structured.py's memo of what depends only on the key and this policy
        self.key_memo: dict[tuple[str, bool], tuple[str, dict[str, int], str | None]] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled

    def conversation(self) -> Conversation:
        return Conversation(self)

    # -- finding -------------------------------------------------------------------------
    def asks(self, text: str, words: list[str] | None = None) -> set[Expect]:
        """What a question in ``text`` asks the other side for (kinds this policy removes);
        ``words``: the text's words as ``hits`` split them, when already known."""
        if not text or not self._askable:
            return set()
        if words is None:
            words = text.lower().translate(_SPLIT).split()
        if self._ask_words.isdisjoint(words):
            return set()
        low = text.lower() if text.isascii() else None
        return {
            k for k in self._askable if not TRIGGERS[k].isdisjoint(words) and names(k, text, low)
        }

    def _asked(self, text: str, bits: int) -> set[Expect]:
        """``asks`` from the screen's bits."""
        if not bits & self._ask_bits:
            return set()
        low = text.lower() if text.isascii() else None
        return {k for k in self._askable if bits & KIND_BIT[k] and names(k, text, low)}

    def said(self, text: str) -> tuple[list[Hit], set[Expect]]:
        """``hits(text)`` and ``asks(text)`` with one screen: the agent's words."""
        if not text or not self._enabled:
            return [], self.asks(text)
        bits: list[int] = []
        found = self._hits(text, (), bits)
        return found, self._asked(text, bits[0])

    def hits(
        self, text: str, expect: Iterable[Expect] = (), *, words_out: list[list[str]] | None = None
    ) -> list[Hit]:
        """What to remove from ``text``; ``expect``: what the other side just asked for,
        the newest question first. ``words_out`` receives the split words (for ``asks``)."""
        if not text or not self._enabled:
            return []
        if words_out is not None:
            words_out.append(screen_words(text))
        return self._hits(text, expect, None)

    def _hits(self, text: str, expect: Iterable[Expect], bits_out: list[int] | None) -> list[Hit]:
        p = self.policy
        if expect:
            expect = [e for e in expect if e in self._askable]
        out: list[Hit] = []
        # The screen: digits, number words, words naming a kind, a card-length digit cluster,
        # in one pass (C over ASCII text when built). A text with no digit and no number word
        # (most of what is said) stops here unless the policy looks for more than numbers.
        got = None if self._native is None else self._native(text)
        ndig, nw, bits, cluster = py_scan(text) if got is None else got
        if bits_out is not None:
            bits_out.append(bits)
        if not ndig and not nw and not self._beyond_numbers:
            return []
        est = ndig + 2 * nw
        named: set[Expect] = set()
        if est and bits & self._trigger_bits:
            low = text.lower() if text.isascii() else None
            named = {k for k in self._context_kinds if bits & KIND_BIT[k] and names(k, text, low)}
        # a card said in words takes at least six number words; in digits, one cluster of them
        card = (
            p.cards
            and est >= CARD_MIN
            and (nw >= SPOKEN_CARD_WORDS or (cluster and self._clustered(text)))
        )
        found: list[Run] = []
        dated: list[Run] | None = None  # read with month names, for dates asked for
        if est and (
            card or named or expect or (p.phones and est >= 7) or (p.national_ids and est >= 8)
        ):
            if _DATES_ASKED.intersection(expect):
                found, dated = runs_and_dated(text, words=nw > 0)
            else:
                found = runs(text, words=nw > 0)
        if card:
            out += card_hits(text, found)
        if named:
            out += named_hits(text, named - {Expect.NATIONAL_ID})
        answers: list[Hit] = []
        for e in expect if est else ():
            # newest question first: an answer is what was asked last ("and the security
            # code?") even while an earlier question ("the card number?") still holds
            for h in answer_hits(text, e, found, dated):
                if not any(h.start < a.end and a.start < h.end for a in answers):
                    answers.append(h)
        out += answers
        if p.national_ids and (ndig >= 5 or found):
            out += national_id_hits(
                text,
                p.national_ids,
                found,
                named=Expect.NATIONAL_ID in named or Expect.NATIONAL_ID in expect,
            )
        if p.phones and est >= 7:
            out += phone_hits(text, p.phone_regions, found)
        if p.emails and ("@" in text or " at " in text.lower()):
            out += email_hits(text)
        if p.ibans and ndig >= 6:
            out += iban_hits(text)
        for rule, pattern in self._rules:
            for m in pattern.finditer(text):
                if m.end() > m.start() and (rule.validate is None or rule.validate(m.group())):
                    keep = m.group()[-rule.keep_last :] if rule.keep_last > 0 else ""
                    out.append(Hit(m.start(), m.end(), rule.kind, keep=keep))
        return merge(out)

    @staticmethod
    def _clustered(text: str) -> bool:
        """Whether some cluster of digits holds enough digits for a card number (the screen
        has not ruled it out)."""
        for m in _CLUSTER.finditer(text):
            a, b = m.span()
            if b - a < CARD_MIN:
                continue  # too short to hold that many digits
            c = m.group()
            if len(c) - len(c.translate(_DEL_DIGITS)) >= CARD_MIN:
                return True
        return False

    # -- replacing -----------------------------------------------------------------------
    def placeholder(self, hit: Hit) -> str:
        if hit.kind == "card_number":
            return self.card_placeholder(hit.digits)
        if hit.keep:
            return f"[{hit.kind} ...{hit.keep}]"
        return f"[{hit.kind}]"

    def card_placeholder(self, digits: str) -> str:
        if not (CARD_MIN <= len(digits) <= CARD_MAX):
            return "[card_number]"  # a part of a number: its last four are not a card's
        parts = ["card_number"]
        if self.policy.keep_last4:
            parts.append("****" + digits[-4:])
        if self._fingerprint is not None:
            parts.append("fp=" + self._fingerprint(digits))
        return "[" + " ".join(parts) + "]"

    def apply(self, text: str, hits: list[Hit]) -> Redacted:
        if not hits:
            return Redacted(text)
        pieces: list[str] = []
        pos = 0
        counts: dict[str, int] = {}  # a plain dict: a Counter costs more to make than this
        for h in hits:
            pieces.append(text[pos : h.start])
            pieces.append(self.placeholder(h))
            counts[h.kind] = counts.get(h.kind, 0) + 1
            pos = h.end
        pieces.append(text[pos:])
        return Redacted("".join(pieces), counts)

    def text(self, text: str, *, expect: Iterable[Expect] = ()) -> Redacted:
        """``text`` with what the policy removes replaced by placeholders (no dialog state)."""
        if not text or not self._enabled:
            return Redacted(text)
        return self.apply(text, self._hits(text, expect, None))


@dataclass
class _Ask:
    kind: Expect
    until: float | None = None


class Conversation:
    """Redaction for one conversation: remembers what the agent asked for.

    Feed texts in the order they were said: ``agent()`` for the agent's words (a question it
    asks covers the caller's answers until it speaks again, plus ``ASK_GRACE_S``), ``user()``
    for the caller's (interim transcripts too), ``other()`` for anything else.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._asks: list[_Ask] = []

    @property
    def expecting(self) -> set[Expect]:
        return {a.kind for a in self._asks}

    @property
    def asking(self) -> bool:
        """Whether any question is held (open, or closed and not yet dropped)."""
        return bool(self._asks)

    def open_at(self, at: float) -> bool:
        """Whether a question is still open at ``at`` (the ones closed by then are dropped, as
        ``agent`` and ``user`` drop them first)."""
        return bool(self._live(at))

    def _live(self, at: float) -> list[Expect]:
        if not self._asks:
            return []
        self._asks = [a for a in self._asks if a.until is None or at <= a.until]
        return [a.kind for a in self._asks]

    def agent(self, text: str, *, at: float | None = None) -> Redacted:
        t = time.time() if at is None else at
        self._live(t)
        for a in self._asks:
            if a.until is None:
                a.until = t + ASK_GRACE_S
        r = self.redactor
        found, asked = r.said(text)
        out = r.apply(text, found)
        # One sentence may ask for several ("the expiry date and the security code?"), and is
        # answered in the order it asked: the kind named first is read first (newest), the
        # same in every process (a set's order depends on the hash seed).
        ordered = sorted(asked, key=lambda k: _named_at(k, text), reverse=True) if asked else ()
        for kind in ordered:
            # one open ask per kind: asking again refreshes it
            self._asks = [a for a in self._asks if a.kind is not kind]
            self._asks.append(_Ask(kind))
        return out

    def user(self, text: str, *, at: float | None = None) -> Redacted:
        t = time.time() if at is None else at
        return self.redactor.text(text, expect=self._live(t)[::-1])

    def other(self, text: str) -> Redacted:
        return self.redactor.text(text)


def _named_at(kind: Expect, text: str) -> tuple[int, int]:
    """Where ``text`` first names ``kind`` (with the kind's rank to break a tie)."""
    m = ASKS[kind].search(text)
    return (m.start() if m is not None else 0, -list(Expect).index(kind))
