"""Transcript shaping: `transcript_entries` + the route's JSON serialization, 2,000 records.

    PYTHONPATH=. .venv/bin/python bench/transcript_shaping_bench.py [--rounds 40]
        [--baseline /path/to/other/checkout]

No database: the step of GET /transcript after decryption (bench/api_bench.py measures the
whole request). With ``--baseline`` the same records are shaped by another checkout's
``auditagent`` package too (loaded under another name), alternating run by run, so the two
are compared side by side on the same noisy machine.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import TypeAdapter


def _specs(n: int) -> list[dict[str, Any]]:
    """Fields common to every version of the records: a realistic 2,000-record session."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out: list[dict[str, Any]] = [
        {"kind": "opened", "tenant": "t", "architecture": "pipeline", "agent_name": "intake"}
    ]
    words = "please bring your insurance card and a photo id to the appointment " * 4
    turn = 0
    while len(out) < n - 1:
        turn += 1
        out.append(
            {"kind": "user_utterance", "text": words, "source": "stt", "item_id": f"u{turn}"}
        )
        out.append(
            {
                "kind": "turn_timing",
                "source": "chat_message",
                "role": "user",
                "item_id": f"u{turn}",
                "transcription_delay": 0.2,
                "end_of_utterance_delay": 0.4,
            }
        )
        out.append({"kind": "turn_timing", "source": "llm_metrics", "llm_ttft": 0.3})
        if turn % 3 == 0:
            out.append(
                {"kind": "tool_call", "call_id": f"c{turn}", "name": "lookup", "arguments": "{}"}
            )
            out.append(
                {"kind": "tool_result", "call_id": f"c{turn}", "name": "lookup", "output": "ok"}
            )
        out.append({"kind": "agent_utterance", "text": words, "item_id": f"a{turn}"})
        out.append(
            {
                "kind": "turn_timing",
                "source": "chat_message",
                "role": "assistant",
                "item_id": f"a{turn}",
                "llm_ttft": 0.3,
                "tts_ttfb": 0.1,
                "e2e_latency": 0.9,
            }
        )
    out = out[: n - 1]
    out.append({"kind": "closed", "reason": "participant_disconnected"})
    for i, spec in enumerate(out):
        spec["at"] = t0 + timedelta(milliseconds=100 * i)
    return out


def _modules(package: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    """(records, the module with OpenedRecord, the one with transcript_entries) of a checkout;
    before issue 11 the last two were both ``review``."""
    records = importlib.import_module(f"{package}.records")
    try:
        decrypt = importlib.import_module(f"{package}.reading.decrypt")
        transcript = importlib.import_module(f"{package}.reading.transcript")
    except ModuleNotFoundError:
        decrypt = transcript = importlib.import_module(f"{package}.review")
    return records, decrypt, transcript


def _load_baseline(checkout: Path) -> tuple[ModuleType, ModuleType, ModuleType]:
    tmp = Path(tempfile.mkdtemp(prefix="auditagent-baseline-"))
    shutil.copytree(checkout / "auditagent", tmp / "auditagent_baseline")
    sys.path.insert(0, str(tmp))
    return _modules("auditagent_baseline")


def _runner(modules: tuple[ModuleType, ModuleType, ModuleType], specs: list[dict[str, Any]]) -> Any:
    records, decrypt, transcript = modules
    opened = []
    for i, spec in enumerate(specs):
        rec = records.RECORD_ADAPTER.validate_python(spec)
        opened.append(decrypt.OpenedRecord(seq=i, at=rec.at, kind=rec.kind, record=rec))
    adapter = TypeAdapter(list[transcript.TranscriptEntry])
    # the route serializes with exclude_unset once entries carry only their kind's fields
    exclude_unset = "provenance" in transcript.TranscriptEntry.model_fields

    def run() -> float:
        t = time.perf_counter()
        entries = transcript.transcript_entries(opened)
        adapter.dump_json(entries, exclude_unset=exclude_unset)
        return time.perf_counter() - t

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--baseline", type=Path, default=None)
    args = ap.parse_args()
    specs = _specs(args.records)
    runs = {"current": _runner(_modules("auditagent"), specs)}
    if args.baseline is not None:
        runs["baseline"] = _runner(_load_baseline(args.baseline), specs)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(3):  # warm-up
        for run in runs.values():
            run()
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name].append(run())
    for name, ts in times.items():
        ts.sort()
        p95 = ts[int(len(ts) * 0.95) - 1]
        print(f"{name:9} median {statistics.median(ts) * 1e3:6.1f} ms  p95 {p95 * 1e3:6.1f} ms")
    if "baseline" in times:
        ratio = statistics.median(times["current"]) / statistics.median(times["baseline"])
        print(f"current / baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
