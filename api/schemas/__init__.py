"""Request and response models of the review API (separate from the ORM models), one module
per resource, every one derived from :class:`~.base.ApiModel`."""

from __future__ import annotations

from auditagent.reading.transcript import Timing, TranscriptEntry

from .access_log import AccessLogEntry, AccessLogPage
from .analytics import LatencyGroup, LatencyReport, LatencyStat
from .apikeys import ApiKey, ApiKeyList
from .audio import AudioIntegrity, BundleAudio, BundleAudioChunk, TranscriptAudio
from .base import SAFE_TEXT, ApiModel, IsoDatetime
from .bundles import BundleSession, BundleSignature, ChainRow, EvidenceBundle
from .deletions import ChainState, DeletionList, DeletionRecordOut, RunSummary
from .health import Health
from .holds import (
    HoldIn,
    HoldList,
    HoldOut,
    ParticipantHoldIn,
    ReleaseIn,
    SessionHoldIn,
    TenantHoldIn,
)
from .policies import Period, PolicyIn, RetentionPolicies, RetentionPolicy
from .problems import Problem
from .runs import ErasureIn, PlannedSession, RunOut
from .search import SearchHit, SearchPage, SearchResult
from .sessions import LegalHold, SessionDetail, SessionPage, SessionSummary
from .transcripts import EventItem, EventList, Transcript, TranscriptIntegrity
from .verify import VerifyReport

__all__ = [
    "SAFE_TEXT",
    "AccessLogEntry",
    "AccessLogPage",
    "ApiKey",
    "ApiKeyList",
    "ApiModel",
    "AudioIntegrity",
    "BundleAudio",
    "BundleAudioChunk",
    "BundleSession",
    "BundleSignature",
    "ChainRow",
    "ChainState",
    "DeletionList",
    "DeletionRecordOut",
    "ErasureIn",
    "EventItem",
    "EventList",
    "EvidenceBundle",
    "Health",
    "HoldIn",
    "HoldList",
    "HoldOut",
    "IsoDatetime",
    "LatencyGroup",
    "LatencyReport",
    "LatencyStat",
    "LegalHold",
    "ParticipantHoldIn",
    "Period",
    "PlannedSession",
    "PolicyIn",
    "Problem",
    "ReleaseIn",
    "RetentionPolicies",
    "RetentionPolicy",
    "RunOut",
    "RunSummary",
    "SearchHit",
    "SearchPage",
    "SearchResult",
    "SessionDetail",
    "SessionHoldIn",
    "SessionPage",
    "SessionSummary",
    "TenantHoldIn",
    "Timing",
    "Transcript",
    "TranscriptAudio",
    "TranscriptEntry",
    "TranscriptIntegrity",
    "VerifyReport",
]
