"""Stub of the optional C module auditagent/redaction/_screen.c."""

from __future__ import annotations

CLUSTER_MIN: int

class Screen:
    def __init__(self, words: dict[str, int]) -> None: ...
    def scan(self, text: str, /) -> tuple[int, int, int, bool] | None: ...
