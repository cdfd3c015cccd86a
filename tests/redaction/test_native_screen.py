"""The C screen (auditagent/redaction/_screen.c) and number reader (_spoken.c) against the
Python code, on generated texts; the switch that keeps the Python path; a redactor without the C
modules."""

from __future__ import annotations

import random
import shutil
import sysconfig
from datetime import datetime, timedelta, timezone

import pytest

from auditagent import records as r
from auditagent.redaction import Expect, Redactor, screen, spoken
from auditagent.redaction.cards import ASKS, luhn_valid, names
from auditagent.redaction.screen import NATIVE_ENV, native_scanner, py_scan
from auditagent.redaction.step import RedactionStep

_DIGITS = ["4111", "1111", "12", "3", "2028", "4111111111111111", "0", "99999", "123456789012"]
_SEPS = [" ", "  ", ",", ", ", ".", "-", "/", ":", ";", "\t", "\n", "\x0b", "\x1c", "#", "*",
         "'", '"', "(", ")", "!", "?", "\\", "_", "@", "+", " - ", ". ", "", "", ""]  # fmt: skip
_WORDS = ["uh", "UM", "Er", "erm", "ah", "hmm", "mm", "four", "One", "TWELVE", "twenty",
          "Forty", "oh", "o", "double", "triple", "hundred", "first", "Twelfth", "zero", "nil",
          "card", "Card", "CVV", "cvv2", "cvc", "security", "code", "digits", "Expires",
          "expiry", "exp", "valid", "thru", "good", "birth", "DOB", "d", "born", "ssn", "SIN",
          "social", "tax", "nhs", "pan", "long", "number", "December", "the", "and", "it's",
          "12th", "3:30pm", "a" * 40, "verificationverification", "r", "ha", "mare", "hum",
          "back", "date", "of", "is", "may", "Sept", "jan", "and", "AND", "seventh", "nineteen",
          "fifty", "hundred", "card number", "security code", "date of birth", "three-digit",
          "d.o.b", "Valid Thru", "social security", "tax id", "back of the card", "credit card",
          "Expiration", "number on your card", "verification value", "NHS number",
          "dob"]  # fmt: skip
_ODD = ["é", "٣", "²", "\u00a0", "\u2013", "Ⅻ", "\x00", "\x7f", "ß"]


def _text(rng: random.Random, *, ascii_only: bool) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 30)):
        pick = rng.random()
        if pick < 0.35:
            parts.append(rng.choice(_DIGITS)[: rng.randint(1, 16)])
        elif pick < 0.8:
            parts.append(rng.choice(_WORDS))
        elif pick < 0.95 or ascii_only:
            parts.append("".join(chr(rng.randint(1, 127)) for _ in range(rng.randint(1, 4))))
        else:
            parts.append(rng.choice(_ODD))
        parts.append(rng.choice(_SEPS))
    return "".join(parts)


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [_text(rng, ascii_only=k % 2 == 0) for k in range(n)]


def test_the_c_screen_is_built_where_a_compiler_is() -> None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) here: the package runs on the Python screen")
    assert screen.native_enabled(), "setup.py did not build auditagent/redaction/_screen.c"
    assert spoken._native_runs is not None, "setup.py did not build auditagent/redaction/_spoken.c"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_c_screen_equals_python_screen_on_generated_texts(seed: int) -> None:
    scan = native_scanner()
    if scan is None:
        pytest.skip("the C screen is not built")
    texts = [*_texts(3000, seed), "", " ", "4" * 12, "4 1 1 1 uh 1 1 1 1 um 1 1 1 1", "a1" * 12]
    compared = 0
    for text in texts:
        got = scan(text)
        if not text.isascii():
            assert got is None, repr(text)
            continue
        assert got == tuple(py_scan(text)), repr(text)
        compared += 1
    assert compared > 1500


@pytest.mark.parametrize("seed", [4, 5])
def test_c_number_reader_equals_python_on_generated_texts(seed: int) -> None:
    if spoken._native_runs is None:
        pytest.skip("the C number reader is not built")
    extra = ["one hundred and five", "double oh seven", "twenty first of December 2028",
             "Four Hundred-AND-twelve", "forty-one eleven", "triple 4", "double double one",
             "nineteen hundred", "one hundred and twenty-third", "sept 3rd", "o o o"]  # fmt: skip
    for text in [*_texts(2500, seed), *extra]:
        for months in (False, True):
            for words in (False, True):
                got = spoken.runs(text, months=months, words=words)
                assert got == spoken.py_runs(text, months=months, words=words), repr(text)
        assert spoken.runs_and_dated(text, words=True) == (
            spoken.py_runs(text, words=True),
            spoken.py_runs(text, months=True),
        )


@pytest.mark.parametrize("policy", ["pci", "pii", "off"])
def test_redaction_is_the_same_with_either_screen(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    native = Redactor(policy)
    if native._native is None or spoken._native_runs is None:
        pytest.skip("the C modules are not built")
    monkeypatch.setenv(NATIVE_ENV, "0")
    python = Redactor(policy)
    assert python._native is None
    asks = [(), (Expect.SECURITY_CODE,), (Expect.EXPIRY, Expect.CARD_NUMBER),
            (Expect.DATE_OF_BIRTH, Expect.NATIONAL_ID)]  # fmt: skip
    texts = _texts(1500, 7)
    with_c = [(native.hits(t, asks[k % 4]), native.said(t)) for k, t in enumerate(texts)]
    monkeypatch.setattr(spoken, "_native_runs", None)
    for k, text in enumerate(texts):
        assert with_c[k] == (python.hits(text, asks[k % 4]), python.said(text)), repr(text)


def test_without_the_c_modules_the_python_code_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screen, "_NativeScreen", None)
    monkeypatch.setattr(spoken, "_native_runs", None)
    r = Redactor("pci")
    assert r._native is None and not screen.native_enabled()
    conv = r.conversation()
    assert conv.user("it's 4111 1111 1111 1111").text == "it's [card_number ****1111]"
    conv.agent("And the security code?", at=0.0)
    assert conv.user("one two three", at=1.0).text == "[security_code]"
    assert r.text("ünïcode 4111-1111-1111-1111").text == "ünïcode [card_number ****1111]"


@pytest.mark.parametrize("flag", ["0", "off", "False", " no "])
def test_the_environment_switch_keeps_the_python_screen(
    flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NATIVE_ENV, flag)
    assert Redactor("pci")._native is None


def test_the_needles_never_rule_out_a_question() -> None:
    for text in _texts(3000, 8):
        low = text.lower() if text.isascii() else None
        for kind, pattern in ASKS.items():
            assert names(kind, text, low) == (pattern.search(text) is not None), (kind, text)


def _records(texts: list[str]) -> list[r.Record]:
    at = datetime(2026, 11, 26, tzinfo=timezone.utc)
    out: list[r.Record] = []
    for k, text in enumerate(texts):
        when = at + timedelta(seconds=3 * k)
        shape = k % 5
        if shape == 0:
            out.append(r.UserUtterance(at=when, text=text, source="stt"))
        elif shape == 1:
            out.append(r.AgentUtterance(at=when, text=text[:40], generated_text=text))
        elif shape == 2:
            out.append(r.AgentUtterance(at=when, text=text, generated_text=texts[k - 1]))
        elif shape == 3:
            out.append(r.ToolCall(at=when, call_id=f"c{k}", name="t", arguments=text))
        else:
            out.append(
                r.ToolResult(at=when, call_id=f"c{k}", name="t", output=f'{{"v": "{text}"}}')
            )
    return out


@pytest.mark.parametrize("policy", ["pci", "pii"])
def test_the_steps_fast_path_changes_nothing(policy: str) -> None:
    fast = RedactionStep(Redactor(policy))
    if policy == "pci":
        assert fast._quiet is not None or not screen.native_enabled()
    else:
        assert fast._quiet is None  # only for policies that look for card data alone
    slow = RedactionStep(Redactor(policy))
    slow._quiet = None
    texts = [*_texts(1200, 9), '{"card_number": "4111111111111111"}', "{'cvv': 1}", "Card?"]
    for record in _records(texts):
        assert fast(record) == slow(record), record.kind


def test_luhn_valid_is_python_stdnums() -> None:
    from stdnum import luhn

    rng = random.Random(3)
    cases = ["", "0", "00", "4111111111111111", "4111111111111112", "١٢٣", "12a4", " 12", "²"]
    cases += [
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20))) for _ in range(5000)
    ]
    for digits in cases:
        assert luhn_valid(digits) == luhn.is_valid(digits), digits
