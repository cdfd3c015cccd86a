"""Transcript text stays out of logs: LiveKit's DEBUG logs with the filter, and our own logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents.cli.log import JsonFormatter

from auditagent import logfilter
from auditagent.keys import LocalKeyring
from auditagent.livekit.capture import SessionCapture
from auditagent.recorder import AuditRecorder
from auditagent.settings import Settings
from tests.support.fakes.llm import Reply, ScriptedLLM

CANARY = "Canary-Lynx-3390"


class VaultAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a bank agent.")

    @function_tool
    async def lookup(self, context: RunContext, account: str) -> str:
        """Look up an account."""
        return f"account {account} belongs to {CANARY}"

    @function_tool
    async def freeze(self, context: RunContext, account: str) -> str:
        """Freeze an account."""
        raise RuntimeError(f"cannot freeze {account}")


def _llm() -> ScriptedLLM:
    return ScriptedLLM(
        [
            Reply(text=f"Hello {CANARY}, how can I help?"),
            Reply(tool_calls=[("lookup", f'{{"account": "{CANARY}"}}')]),
            Reply(text="Found it."),
            Reply(tool_calls=[("freeze", f'{{"account": "{CANARY}"}}')]),
            Reply(text="That failed."),
        ]
    )


async def _conversation(session: AgentSession[None]) -> None:
    await session.start(VaultAgent())
    await session.run(user_input=f"hi, I am {CANARY}")
    await session.run(user_input=f"look up {CANARY}")
    await session.run(user_input="freeze it")
    await session.aclose()


class _Capture:
    """Everything logged anywhere, rendered the way LiveKit's JSON log output renders it."""

    def __init__(self) -> None:
        self.buf = io.StringIO()
        self.handler = logging.StreamHandler(self.buf)
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(JsonFormatter())
        self.records: list[logging.LogRecord] = []

    @property
    def text(self) -> str:
        return self.buf.getvalue()


@pytest.fixture
def capture_all() -> Iterator[_Capture]:
    cap = _Capture()
    root = logging.getLogger()
    lk = logging.getLogger("livekit.agents")
    old = (root.level, lk.level)
    root.addHandler(cap.handler)
    root.setLevel(logging.DEBUG)
    lk.setLevel(logging.DEBUG)
    try:
        yield cap
    finally:
        root.removeHandler(cap.handler)
        root.setLevel(old[0])
        lk.setLevel(old[1])


async def test_without_filter_livekit_logs_the_canary(capture_all: _Capture) -> None:
    """Control: LiveKit really does put the transcript into DEBUG logs."""
    await _conversation(AgentSession(llm=_llm(), vad=None))
    assert CANARY in capture_all.text
    assert '"lk.pii.' in capture_all.text


async def test_filter_keeps_canary_out_of_all_log_output(
    capture_all: _Capture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    f = logfilter.install_log_filter()
    try:
        await _conversation(AgentSession(llm=_llm(), vad=None))
    finally:
        logfilter.remove_log_filter(f)
    out = capture_all.text
    assert out, "nothing was logged at all"
    assert logfilter.REDACTED in out  # the filter saw content-bearing records
    assert CANARY not in out
    assert all(CANARY not in r.getMessage() for r in caplog.records)
    assert CANARY not in caplog.text
    # the tool failure is still visible as such, only its message is gone
    assert f"RuntimeError: {logfilter.REDACTED}" in out


def test_filter_unit_behaviour() -> None:
    f = logfilter.TranscriptRedactionFilter()
    rec = logging.makeLogRecord(
        {"name": "livekit.agents", "msg": "x", "lk.pii.text": CANARY, "text": CANARY, "n": 3}
    )
    assert f.filter(rec)
    assert rec.__dict__["lk.pii.text"] == logfilter.REDACTED
    assert rec.__dict__["text"] == logfilter.REDACTED and rec.__dict__["n"] == 3
    # a non-LiveKit logger keeps its generic names, but never a pii-marked one
    other = logging.makeLogRecord(
        {"name": "app", "msg": "x", "text": "keep", "lk.pii.user_input": CANARY}
    )
    assert f.filter(other)
    assert other.__dict__["text"] == "keep"
    assert other.__dict__["lk.pii.user_input"] == logfilter.REDACTED
    assert not f.filter(logging.makeLogRecord({"name": "lk.pii.text", "msg": CANARY}))
    assert f.filter(logging.makeLogRecord({"name": "lk.piiano", "msg": "x"}))


def test_disable_trace_pii_sets_livekit_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit.agents.telemetry import utils as tel_utils

    monkeypatch.delenv("LIVEKIT_TELEMETRY_ALLOW_PII", raising=False)
    logfilter.disable_trace_pii()
    assert tel_utils.allow_pii_from_env() is False


# ---------------------------------------------------------------- auditagent's own loggers


@pytest.fixture
def own_logs() -> Iterator[_Capture]:
    cap = _Capture()
    lg = logging.getLogger("auditagent")
    old = lg.level
    lg.addHandler(cap.handler)
    lg.setLevel(logging.DEBUG)
    try:
        yield cap
    finally:
        lg.removeHandler(cap.handler)
        lg.setLevel(old)


async def test_recorder_logs_never_carry_the_canary(
    own_logs: _Capture, settings: Settings, tenant: str
) -> None:
    LocalKeyring.init(settings.resolved_keyring_path)
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=_llm(), vad=None)
        recorder.attach(session, tenant=tenant, participant=f"+1{CANARY}")
        await _conversation(session)
        await recorder.flush()
    assert CANARY not in own_logs.text


async def test_recorder_logs_during_db_outage_never_carry_the_canary(
    own_logs: _Capture, data_dir: Path, tenant: str
) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        data_dir=data_dir,
        flush_interval=0.05,
        db_timeout=0.5,
    )
    LocalKeyring.init(settings.resolved_keyring_path)
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=_llm(), vad=None)
        recorder.attach(session, tenant=tenant, participant=f"+1{CANARY}")
        await _conversation(session)
        await recorder.flush()
    assert "unreachable" in own_logs.text  # the outage path did log
    assert CANARY not in own_logs.text


async def test_untranslatable_event_log_does_not_echo_content(own_logs: _Capture) -> None:
    """A malformed event whose content makes validation fail must not reach the log."""
    session: AgentSession[None] = AgentSession(llm=ScriptedLLM([]), vad=None)
    cap = SessionCapture(session, put=lambda _: None)
    call = SimpleNamespace(
        call_id="c1", name="lookup", arguments={"account": CANARY}, group_id=None, id="i1"
    )
    ev = SimpleNamespace(update=SimpleNamespace(type="tool_call_started", function_call=call))
    (notice,) = cap.translate(("tool_execution_updated", ev, 1.0))
    assert notice.kind == "notice"
    assert "could not translate" in own_logs.text
    assert CANARY not in own_logs.text


def test_install_twice_does_not_stack() -> None:
    h = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(h)
    try:
        f1 = logfilter.install_log_filter()
        f2 = logfilter.install_log_filter()
        assert f1 is f2
        assert h.filters.count(f1) == 1
        assert logging.getLogger("livekit.agents").filters.count(f1) == 1
        logfilter.remove_log_filter(f1)
        assert f1 not in h.filters and f1 not in logging.getLogger("livekit.agents").filters
    finally:
        root.removeHandler(h)
