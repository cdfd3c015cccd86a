"""`GET /v1/search`: a page of confirmed matches, each with its hits and their snippets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .base import ApiModel
from .sessions import SessionSummary

__all__ = ["SearchHit", "SearchPage", "SearchResult"]


class SearchHit(ApiModel):
    """One record that holds part of the query, with the text around the match."""

    seq: int = Field(description="the record's position in its session (open the transcript here)")
    role: Literal["user", "agent", "tool"]
    at: datetime
    snippet: str = Field(description="up to 60 characters either side of the match; … where cut")
    match_start: int = Field(description="offset of the matched words in `snippet`")
    match_end: int


class SearchResult(ApiModel):
    session: SessionSummary
    hits: list[SearchHit] = Field(description="the first few matching records, in seq order")
    hit_count: int = Field(description="matching records in the session")


class SearchPage(ApiModel):
    items: list[SearchResult]
    next_cursor: str | None = Field(
        description="continue here; a page can be short, or empty, and still have a next one"
    )
    examined: int = Field(
        description="candidate sessions decrypted for this page, the non-matching ones included"
    )
