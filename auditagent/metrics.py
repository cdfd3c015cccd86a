"""Prometheus metrics, created on first use in a registry of their own.

The recorder and the API both report here; `/metrics` renders it. Built lazily so importing
auditagent has no side effects and tests can reset it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    records_written: Counter
    records_spooled: Counter
    records_replayed: Counter
    gaps: Counter
    spool_depth: Gauge
    queue_depth: Gauge
    flush_seconds: Histogram
    api_seconds: Histogram
    access_log_writes: Counter


_lock = threading.Lock()
_metrics: Metrics | None = None


def metrics() -> Metrics:
    global _metrics
    with _lock:
        if _metrics is None:
            reg = CollectorRegistry()
            _metrics = Metrics(
                registry=reg,
                records_written=Counter(
                    "auditagent_records_written", "Records committed to the database", registry=reg
                ),
                records_spooled=Counter(
                    "auditagent_records_spooled", "Records written to the local spool", registry=reg
                ),
                records_replayed=Counter(
                    "auditagent_records_replayed", "Spooled records replayed", registry=reg
                ),
                gaps=Counter("auditagent_gaps", "Gap records written", registry=reg),
                spool_depth=Gauge(
                    "auditagent_spool_depth", "Records waiting in the spool", registry=reg
                ),
                queue_depth=Gauge(
                    "auditagent_queue_depth", "Records waiting in memory", registry=reg
                ),
                flush_seconds=Histogram(
                    "auditagent_flush_seconds", "Time to write one batch", registry=reg
                ),
                api_seconds=Histogram(
                    "auditagent_api_request_seconds",
                    "API request latency",
                    ["route", "method", "status"],
                    registry=reg,
                ),
                access_log_writes=Counter(
                    "auditagent_access_log_writes", "Access-log rows written", registry=reg
                ),
            )
        return _metrics
