"""Card data never reaches the database, the spool or the logs: real AgentSessions (text, audio
pipeline, realtime), decrypted records and the raw bytes of every table checked for canaries."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.agents.voice.events import ConversationItemAddedEvent

from auditagent import logfilter
from auditagent import records as r
from auditagent.keys import LocalKeyring
from auditagent.recorder import AuditRecorder
from auditagent.redaction import PCI, Rule
from auditagent.settings import Settings
from auditagent.store import db
from tests.support.fakes.io import ClockedAudioOutput, CollectingTextOutput, ScriptedAudioInput
from tests.support.fakes.llm import Reply, ScriptedLLM
from tests.support.fakes.realtime import OpenAILikeRealtime
from tests.support.fakes.stt import ScriptedSTT
from tests.support.fakes.tts import ScriptedTTS
from tests.support.fakes.vad import EnergyVAD
from tests.support.helpers import assert_no_plaintext, by_kind, read_records, text_values

CARD = "4929817355264190"  # passes Luhn; found nowhere else
CARD_SPACED = "4929 8173 5526 4190"
CARD_SPOKEN = "four nine two nine eight one seven three five five two six four one nine zero"
CODE = "7391"
CODE_SPOKEN = "seven three nine one"
EXPIRY_SPOKEN = "eleven twenty-nine"
ORDER = "1234 5678 9012 3456"  # fails Luhn: an order number, kept
# Plaintext forms that can only come from the conversation (four digits alone could occur in a
# uuid or a timestamp of the dump).
CANARIES = (CARD, CARD_SPACED, CARD_SPOKEN, CODE_SPOKEN, EXPIRY_SPOKEN, f'"{CODE}"', f"is {CODE}")


class PaymentAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You take card payments.")

    @function_tool
    async def charge_card(
        self,
        context: RunContext,
        card_number: str,
        security_code: str,
        expiration_month: int,
        expiration_year: int,
    ) -> str:
        """Charge the caller's card."""
        return f"charged card {card_number}, order {ORDER}"


@pytest.fixture
def private_settings(
    make_database: Callable[[], str], data_dir: Any
) -> Settings:  # a database of its own: its raw dump holds this test's session only
    return Settings(database_url=make_database(), data_dir=data_dir, flush_interval=0.05)


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _pg_dump(url: str) -> bytes:
    """The database as ``pg_dump`` writes it (text columns as text, bytea as hex): what an
    operator's backup would hold."""
    exe = shutil.which("pg_dump")
    assert exe is not None, "pg_dump is part of the test machine (postgresql-client)"
    out = subprocess.run(
        [exe, "--data-only", db.libpq_url(url)], capture_output=True, check=True, timeout=120
    )
    return out.stdout


def _assert_clean(got: list[r.Record], settings: Settings) -> None:
    texts = "\n".join(v for x in got for v in text_values(x))
    for c in (*CANARIES, CODE):
        assert c not in texts, f"{c!r} in a decrypted record"
    # every table's raw bytes (bytea as bytes), and the spool
    assert_no_plaintext(settings.database_url or "", settings.resolved_spool_dir, *CANARIES)
    dump = _pg_dump(settings.database_url or "")
    assert b"COPY public.events" in dump
    for c in CANARIES:
        assert c.encode() not in dump, f"{c!r} in pg_dump"


def _payment_llm() -> ScriptedLLM:
    args = json.dumps(
        {
            "card_number": CARD,
            "security_code": CODE,
            "expiration_month": 11,
            "expiration_year": 2029,
        }
    )
    return ScriptedLLM(
        [
            Reply(text="Sure. Please read me the card number."),
            Reply(text="Thanks. What is the security code on the back of the card?"),
            Reply(text="And when does it expire?"),
            Reply(tool_calls=[("charge_card", args)]),
            Reply(text=f"Done. Your order number is {ORDER}."),
        ]
    )


async def test_text_session_card_code_expiry_and_tool_arguments_are_redacted(
    private_settings: Settings,
) -> None:
    settings = private_settings
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=_payment_llm(), vad=None)
        rec = recorder.attach(session, tenant="clinic", participant="+15550001111")
        await session.start(PaymentAgent())
        await session.run(user_input="I'd like to pay my bill")
        await session.run(user_input=f"it's {CARD_SPACED}")
        await session.run(user_input=CODE)
        await session.run(user_input=EXPIRY_SPOKEN)
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert isinstance(got[0], r.Opened) and got[0].redaction == "pci"
    users = by_kind(got, "user_utterance")
    assert [u.text for u in users] == [  # type: ignore[attr-defined]
        "I'd like to pay my bill",
        "it's [card_number ****4190]",
        "[security_code]",
        "[expiry]",
    ]
    assert [u.redacted for u in users] == [
        {},
        {"card_number": 1},
        {"security_code": 1},
        {"expiry": 1},
    ]
    (call,) = by_kind(got, "tool_call")
    assert json.loads(call.arguments) == {  # type: ignore[attr-defined]
        "card_number": "[card_number ****4190]",
        "security_code": "[security_code]",
        "expiration_month": "[expiry]",
        "expiration_year": "[expiry]",
    }
    assert call.redacted == {"card_number": 1, "security_code": 1, "expiry": 2}
    (result,) = by_kind(got, "tool_result")
    assert result.output == f"charged card [card_number ****4190], order {ORDER}"  # type: ignore[attr-defined]
    agents = [a.text for a in by_kind(got, "agent_utterance")]  # type: ignore[attr-defined]
    assert agents[-1] == f"Done. Your order number is {ORDER}."  # failing Luhn: kept
    _assert_clean(got, settings)


async def test_audio_pipeline_spoken_card_and_volunteered_code(
    private_settings: Settings,
) -> None:
    settings = private_settings
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    lines = [f"my card number is {CARD_SPOKEN}", f"and the cvv is {CODE_SPOKEN}"]
    llm = ScriptedLLM([Reply(text="Got the card."), Reply(text="Thank you.")])
    session: AgentSession[None] = AgentSession(
        stt=ScriptedSTT(lines),
        vad=EnergyVAD(),
        llm=llm,
        tts=ScriptedTTS(seconds_per_word=0.02),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.15, "max_delay": 1.0},
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    mic = ScriptedAudioInput()
    session.input.audio = mic
    session.output.audio = ClockedAudioOutput()
    session.output.transcription = CollectingTextOutput()
    said: list[str] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role == "assistant":
            said.append(ev.item.text_content or "")

    session.on("conversation_item_added", on_item)
    async with AuditRecorder(settings) as recorder:
        rec = recorder.attach(session, tenant="clinic")
        await session.start(PaymentAgent())
        try:
            for i in range(len(lines)):
                await mic.speak(0.4)
                await _until(lambda i=i: len(said) > i, 30, f"reply {i}")  # type: ignore[misc]
        finally:
            mic.close()
            await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    users = [u.text for u in by_kind(got, "user_utterance")]  # type: ignore[attr-defined]
    assert "my card number is [card_number ****4190]" in users
    assert "and the cvv is [security_code]" in users
    _assert_clean(got, settings)


async def test_realtime_model_card_split_from_its_code_over_turns(
    private_settings: Settings,
) -> None:
    settings = private_settings
    keyring = LocalKeyring.init(settings.resolved_keyring_path)
    model = OpenAILikeRealtime(replies=["What is the security code?", "Thanks, all done."])
    async with AuditRecorder(settings) as recorder:
        session: AgentSession[None] = AgentSession(llm=model, vad=None)
        said: list[str] = []

        def on_item(ev: ConversationItemAddedEvent) -> None:
            if isinstance(ev.item, lk_llm.ChatMessage) and ev.item.role == "assistant":
                said.append(ev.item.text_content or "")

        session.on("conversation_item_added", on_item)
        rec = recorder.attach(session, tenant="clinic")
        await session.start(Agent(instructions="You take card payments."))
        (rt,) = model.sessions
        rt.user_turn(f"my card is {CARD_SPACED}, it expires {EXPIRY_SPOKEN}")
        await _until(lambda: len(said) >= 1, 30, "the question")
        rt.user_turn(CODE_SPOKEN)
        await _until(lambda: len(said) >= 2, 30, "the last reply")
        await session.aclose()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    users = [u.text for u in by_kind(got, "user_utterance")]  # type: ignore[attr-defined]
    assert users == ["my card is [card_number ****4190], it expires [expiry]", "[security_code]"]
    _assert_clean(got, settings)


async def test_policies_by_attach_and_by_environment(
    settings: Settings,
    keyring: LocalKeyring,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = f"card {CARD_SPACED}, email ann@example.com, call 415 555 2671"
    async with AuditRecorder(settings) as recorder:
        pci = recorder.open_session(tenant=tenant)
        pii = recorder.open_session(tenant=tenant, redaction="pii")
        off = recorder.open_session(tenant=tenant, redaction="off")
        for rec in (pci, pii, off):
            rec.add(r.UserUtterance(at=_now(), text=said, source="stt"))
            rec.close()
        await recorder.flush()
    texts = {}
    for name, rec in (("pci", pci), ("pii", pii), ("off", off)):
        got = read_records(settings.database_url or "", rec.session_id, keyring)
        assert got[0].redaction == name  # type: ignore[union-attr]
        texts[name] = by_kind(got, "user_utterance")[0].text  # type: ignore[attr-defined]
    assert texts["pci"] == "card [card_number ****4190], email ann@example.com, call 415 555 2671"
    assert texts["pii"] == "card [card_number ****4190], email [email], call [phone]"
    assert texts["off"] == said
    monkeypatch.setenv("AUDITAGENT_REDACTION", "PII")
    env_settings = Settings(database_url=settings.database_url, data_dir=settings.data_dir)
    assert env_settings.redaction == "pii"
    async with AuditRecorder(env_settings) as recorder:
        rec = recorder.open_session(tenant=tenant)
        rec.add(r.UserUtterance(at=_now(), text=said, source="stt"))
        rec.close()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    assert by_kind(got, "user_utterance")[0].text == texts["pii"]  # type: ignore[attr-defined]


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def test_fingerprint_matches_two_mentions_of_one_card_without_the_number(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    policy = replace(PCI, name="pci-fp", fingerprint=True)
    async with AuditRecorder(settings) as recorder:
        rec = recorder.open_session(tenant=tenant, redaction=policy)
        rec.add(r.UserUtterance(at=_now(), text=f"card {CARD_SPACED}", source="stt"))
        rec.add(r.ToolCall(at=_now(), call_id="c", name="pay", arguments=json.dumps({"pan": CARD})))
        rec.close()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    said = by_kind(got, "user_utterance")[0].text  # type: ignore[attr-defined]
    arg = json.loads(by_kind(got, "tool_call")[0].arguments)["pan"]  # type: ignore[attr-defined]
    assert said.startswith("card [card_number ****4190 fp=") and said[5:] == arg
    assert got[0].redaction == "pci-fp"  # type: ignore[union-attr]


async def test_a_redaction_failure_seals_a_notice_and_drops_the_text(
    settings: Settings, keyring: LocalKeyring, tenant: str
) -> None:
    def broken(value: str) -> bool:
        raise RuntimeError("validator bug")

    policy = replace(
        PCI, name="broken", rules=(Rule(kind="x", pattern=r"zebra\w+", validate=broken),)
    )
    async with AuditRecorder(settings) as recorder:
        rec = recorder.open_session(tenant=tenant, redaction=policy)
        rec.add(r.UserUtterance(at=_now(), text=f"zebrafinch {CARD_SPACED}", source="stt"))
        rec.add(r.UserUtterance(at=_now(), text="fine words", source="stt"))
        rec.close()
        await recorder.flush()
    got = read_records(settings.database_url or "", rec.session_id, keyring)
    kinds = [x.kind for x in got]
    assert kinds == ["opened", "notice", "user_utterance", "user_utterance", "closed"]
    notice = got[1]
    assert notice.code == "redaction_failed"  # type: ignore[union-attr]
    assert notice.details == {"kind": "user_utterance", "error": "RuntimeError"}  # type: ignore[union-attr]
    assert got[2].text == "[text removed: redaction failed]"  # type: ignore[union-attr]
    assert got[3].text == "fine words"  # type: ignore[union-attr]
    assert "zebrafinch" not in "\n".join(v for x in got for v in text_values(x))


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s %(note)s"))
    lk = logging.getLogger("livekit.agents")
    ours = logging.getLogger("some.app")
    old = lk.level, ours.level
    lk.setLevel(logging.DEBUG)
    ours.setLevel(logging.DEBUG)
    lk.addHandler(handler)
    ours.addHandler(handler)
    yield stream
    lk.removeHandler(handler)
    ours.removeHandler(handler)
    lk.setLevel(old[0])
    ours.setLevel(old[1])


def test_protect_logs_applies_the_same_rules_to_log_lines(log_stream: io.StringIO) -> None:
    f = logfilter.install_log_filter(("livekit.agents", "some.app"), root_handlers=False)
    try:
        logging.getLogger("livekit.agents").debug(
            "executing tool with %s", f"card {CARD_SPACED} cvv {CODE}", extra={"note": "-"}
        )
        logging.getLogger("some.app").warning(
            "payment for %s", "x", extra={"note": f"expires {EXPIRY_SPOKEN}"}
        )
    finally:
        logfilter.remove_log_filter(f)
    out = log_stream.getvalue()
    assert "card [card_number ****4190] cvv [security_code]" in out
    assert "expires [expiry]" in out
    for c in (CARD_SPACED, CODE, EXPIRY_SPOKEN):
        assert c not in out


def test_protect_logs_off_leaves_messages_alone(log_stream: io.StringIO) -> None:
    f = logfilter.TranscriptRedactionFilter(redaction="off")
    logfilter.install_log_filter(("some.app",), root_handlers=False, log_filter=f)
    try:
        logging.getLogger("some.app").warning("card %s", CARD_SPACED, extra={"note": "-"})
    finally:
        logfilter.remove_log_filter(f)
    assert CARD_SPACED in log_stream.getvalue()


def test_unknown_policy_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITAGENT_REDACTION", "strict")
    with pytest.raises(ValueError, match="pci"):
        Settings()
