"""Stub of the optional C module auditagent/redaction/_spoken.c."""

from __future__ import annotations

from typing import Any

def init(item: type[Any], run: type[Any], words: list[tuple[str, int, str | int]], /) -> None: ...
def runs(text: str, months: bool, words: bool, /) -> Any: ...
