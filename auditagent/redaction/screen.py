"""The redaction screen: what a text holds that makes it worth reading further.

One pass gives, for a text: its ASCII digits, its number words ("four", "twelfth", "double"),
which kinds its words could name or ask for (``TRIGGERS``), and whether ``CARD_MIN`` digits
stand together with only separators or fillers between them. Most of what is said stops here.

The pass is done by the optional C module ``auditagent.redaction._screen`` (built by setup.py
when a compiler is there) over ASCII text, and in Python otherwise, with the same results
(tests/redaction/test_native_screen.py compares them). ``AUDITAGENT_REDACTION_NATIVE=0`` in
the environment, read when a ``Redactor`` is made, keeps the Python path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from .cards import CARD_MIN, TRIGGERS, Expect
from .native import NATIVE_ENV, wanted
from .spoken import NUMBER_WORDS

try:  # the optional C module: absent without a compiler at install time
    from ._screen import Screen as _NativeScreen
except ImportError:  # pragma: no cover - depends on the build
    _NativeScreen = None  # type: ignore[assignment,misc]

__all__ = ["NATIVE_ENV", "Screened", "native_enabled", "native_scanner", "py_scan"]

KIND_BIT: dict[Expect, int] = {k: 2 << i for i, k in enumerate(Expect)}
"""A word's bits: 1 for a number word, ``KIND_BIT[k]`` for a word of ``TRIGGERS[k]``."""

WORD_BITS: dict[str, int] = {w: 1 for w in NUMBER_WORDS}
for _k, _words in TRIGGERS.items():
    for _w in _words:
        WORD_BITS[_w] = WORD_BITS.get(_w, 0) | KIND_BIT[_k]

# In ASCII text, a cluster with CARD_MIN digits has them with only its separators and the
# fillers' letters between: one search without alternatives rules most texts out.
CLUSTER_SCREEN = re.compile(r"[0-9](?:[\s,./\-uhmeraUHMERA]*[0-9]){" + str(CARD_MIN - 1) + "}")
# punctuation to spaces and every ASCII digit to "#": words and the digit count in one pass
SCREEN = str.maketrans(
    {**{c: " " for c in "-,.;:!?\"'()[]{}/\\*#"}, **dict.fromkeys("0123456789", "#")}
)
SCREEN_BYTES = bytes.maketrans(
    bytes(k for k in SCREEN if k < 128), bytes(ord(SCREEN[k]) for k in SCREEN if k < 128)
)
_TRIGGER_WORDS = frozenset().union(*TRIGGERS.values())


class Screened(NamedTuple):
    digits: int
    """ASCII digits in the text."""
    number_words: int
    bits: int
    """The OR of ``WORD_BITS`` over the text's words."""
    cluster: bool
    """False: no ``CARD_MIN`` digits with only separators or fillers between (ASCII text);
    True: there may be (always True for a text that is not ASCII)."""


def screen_words(text: str) -> list[str]:
    """The text's words as the screen sees them (lower case, digits as ``#``)."""
    if text.isascii():  # the same translation, byte-wise: a table lookup in C
        return text.encode().lower().translate(SCREEN_BYTES).decode().split()
    return text.lower().translate(SCREEN).split()


def py_scan(text: str) -> Screened:
    """The screen in Python, for any text."""
    if text.isascii():
        screened = text.encode().lower().translate(SCREEN_BYTES).decode()
        ascii_text = True
    else:
        screened = text.lower().translate(SCREEN)
        ascii_text = False
    ndig = screened.count("#")
    words = screened.split()
    nw = 0 if NUMBER_WORDS.isdisjoint(words) else sum(map(NUMBER_WORDS.__contains__, words))
    bits = 1 if nw else 0
    if not _TRIGGER_WORDS.isdisjoint(words):
        for k, bit in KIND_BIT.items():
            if not TRIGGERS[k].isdisjoint(words):
                bits |= bit
    if not ascii_text:
        cluster = True
    else:
        cluster = ndig >= CARD_MIN and CLUSTER_SCREEN.search(text) is not None
    return Screened(ndig, nw, bits, cluster)


def native_enabled() -> bool:
    """Whether the C module is built and not switched off by ``AUDITAGENT_REDACTION_NATIVE``."""
    return _NativeScreen is not None and wanted()


def native_scanner() -> Callable[[str], tuple[int, int, int, bool] | None] | None:
    """The C screen for a new redactor (it answers None for a text that is not ASCII: screen
    that with ``py_scan``), or None when the module is absent or switched off."""
    if not native_enabled():
        return None
    return _NativeScreen(WORD_BITS).scan


def native_quiet(hints: tuple[str, ...]) -> Callable[[str, int, bool], bool] | None:
    """``quiet(text, mask, with_hints)``: True when an ASCII text surely holds nothing for a
    policy that looks for card data only: no word whose ``WORD_BITS`` meet ``mask``, no
    card-length cluster of digits or four number words, and (``with_hints``) none of ``hints``
    as a substring in any case. False when unsure. None when the C module is absent or off."""
    if not native_enabled():
        return None
    return _NativeScreen(WORD_BITS, hints=hints).quiet
