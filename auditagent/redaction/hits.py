"""A found span of sensitive text, and how overlapping finds are merged."""

from __future__ import annotations

from typing import NamedTuple

# When two finds overlap, the wider one wins; on equal width, the kind listed first here.
_PRIORITY = ("card_number", "track_data", "security_code", "pin", "expiry", "iban")


class Hit(NamedTuple):
    """A named tuple: the cheapest object to build, and every detector builds them."""

    start: int
    end: int
    kind: str
    digits: str = ""
    """A card number's digits, for the placeholder's last four and fingerprint; else empty."""
    keep: str = ""
    """Trailing characters a custom rule keeps visible."""


def _rank(h: Hit) -> tuple[int, int]:
    pri = _PRIORITY.index(h.kind) if h.kind in _PRIORITY else len(_PRIORITY)
    return (-(h.end - h.start), pri)


def merge(hits: list[Hit]) -> list[Hit]:
    """Non-overlapping hits in text order: where two overlap, the covering span is kept with
    the kind of the better-ranked one, so no part of either survives."""
    if len(hits) <= 1:
        return hits
    out: list[Hit] = []
    for h in sorted(hits, key=lambda h: (h.start, -h.end)):
        if out and h.start < out[-1].end:
            prev = out[-1]
            best = min(prev, h, key=_rank)
            out[-1] = Hit(
                prev.start, max(prev.end, h.end), best.kind, digits=best.digits, keep=best.keep
            )
        else:
            out.append(h)
    return out
