"""Stub of the optional C module auditagent/redaction/_screen.c."""

from __future__ import annotations

CLUSTER_MIN: int
SPOKEN_CARD_WORDS: int

class Screen:
    def __init__(self, words: dict[str, int], hints: tuple[str, ...] = ()) -> None: ...
    def scan(self, text: str, /) -> tuple[int, int, int, bool] | None: ...
    def quiet(self, text: str, mask: int, hints: bool, /) -> bool: ...
