"""Card data in text, written and spoken: what is removed, what stays, and the placeholders."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditagent.errors import ConfigError
from auditagent.redaction import OFF, PCI, PII, Redactor, Rule, resolve_policy
from auditagent.redaction.spoken import runs

PCI_R = Redactor("pci")

# Test numbers from the networks' published test ranges (all pass Luhn).
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", "[card_number ****1111]"),
        ("4111-1111-1111-1111", "[card_number ****1111]"),
        ("4111111111111111", "[card_number ****1111]"),
        ("4111.1111.1111.1111", "[card_number ****1111]"),
        ("4111, 1111, 1111, 1111.", "[card_number ****1111]."),
        ("3782 822463 10005", "[card_number ****0005]"),
        ("5555 5555 5555 4444", "[card_number ****4444]"),
        (
            "four one one one one one one one one one one one one one one one",
            "[card_number ****1111]",
        ),
        ("forty-one eleven eleven eleven eleven eleven eleven eleven", "[card_number ****1111]"),
        ("forty one eleven, eleven eleven, eleven eleven, eleven eleven", "[card_number ****1111]"),
        (
            "four double one one, double one double one, one one one one, triple one one",
            "[card_number ****1111]",
        ),
        (
            "five five five five, five five five five, five five five five, four double four four",
            "[card_number ****4444]",
        ),
        ("Four One One One 1111 eleven eleven one one one one", "[card_number ****1111]"),
        ("4111 uh 1111 um 1111 1111", "[card_number ****1111]"),
    ],
)
def test_card_numbers_in_digits_and_words_keep_only_the_last_four(text: str, expected: str) -> None:
    got = PCI_R.text(f"sure, it is {text} thanks")
    assert got.text == f"sure, it is {expected} thanks"
    assert got.removed == {"card_number": 1}


def test_a_sixteen_digit_number_failing_luhn_is_kept() -> None:
    for text in (
        "order number 1234 5678 9012 3456 please",
        "order 1234567890123456",
        "reference 4111-1111-1111-1112",
    ):
        got = PCI_R.text(text)
        assert got.text == text
        assert got.removed == {}


def test_two_cards_in_one_utterance_are_both_removed() -> None:
    got = PCI_R.text(f"the old one was {VISA} and the new one is {MASTERCARD}")
    assert (
        got.text
        == "the old one was [card_number ****1111] and the new one is [card_number ****4444]"
    )
    assert got.removed == {"card_number": 2}


def test_a_leading_oh_is_not_a_digit_and_a_card_inside_a_longer_run_is_found() -> None:
    assert (
        PCI_R.text("Oh, " + " ".join(["four"] + ["one"] * 15)).text == "Oh, [card_number ****1111]"
    )
    got = PCI_R.text("4111 1111 1111 1111 12 28 999")
    assert got.text.startswith("[card_number ****1111]")
    assert "4111" not in got.text


@pytest.mark.parametrize(
    "text",
    [
        "the cvv is 123",
        "CVC: 123",
        "my security code is one two three",
        "security code, uh, one twenty three",
        "123 is the security code",
        "the three digits on the back are 123",
        "the 3 digits on the back are one two three",
        "card verification value 1234",
    ],
)
def test_a_security_code_named_in_the_text_leaves_nothing(text: str) -> None:
    got = PCI_R.text(text)
    assert got.removed == {"security_code": 1}
    assert "[security_code]" in got.text
    assert "123" not in got.text and "one two three" not in got.text
    assert "twenty three" not in got.text


@pytest.mark.parametrize(
    "text",
    [
        "it expires twelve twenty-eight",
        "expiry 12/28",
        "expiration date 12-2028",
        "expires December twenty twenty eight",
        "exp 0427",
        "valid thru oh four twenty seven",
        "it expires in December of 2028",
    ],
)
def test_an_expiry_named_in_the_text_leaves_nothing(text: str) -> None:
    got = PCI_R.text(text)
    assert got.removed == {"expiry": 1}, got
    for leftover in ("12", "28", "twenty", "December", "04", "27", "seven"):
        assert leftover not in got.text


def test_numbers_that_name_nothing_are_kept() -> None:
    for text in (
        "I'd like one appointment at two on the twelfth",
        "my zip code is 90210 and I'm 42",
        "call back in 15 minutes",
        "room 123 on floor 4",
    ):
        assert PCI_R.text(text).text == text


def test_placeholder_options_last_four_and_fingerprint() -> None:
    hidden = Redactor(replace(PCI, keep_last4=False))
    assert hidden.text(VISA).text == "[card_number]"
    fp = Redactor(replace(PCI, fingerprint=True), fingerprint=lambda d: f"k{len(d)}{d[-1]}")
    assert fp.text(VISA).text == "[card_number ****1111 fp=k161]"
    # fingerprint asked for but no key given: the placeholder goes without it, never with digits
    assert Redactor(replace(PCI, fingerprint=True)).text(VISA).text == "[card_number ****1111]"


def test_off_keeps_everything_and_pci_is_the_default() -> None:
    text = f"card {VISA} cvv 123 expires 12/28"
    assert Redactor("off").text(text).text == text
    assert Redactor().policy is PCI
    assert resolve_policy(None) is PCI
    assert resolve_policy("PII") is PII
    assert resolve_policy(" off ") is OFF
    assert not OFF.enabled


def test_an_unknown_policy_name_is_a_one_line_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_policy("strict")
    assert "use pci (the default), pii, off" in str(err.value)
    assert "\n" not in str(err.value)


def test_custom_rules_add_their_own_kind() -> None:
    policy = replace(
        PCI,
        name="acme",
        rules=(
            Rule(kind="member_id", pattern=r"\bMBR-\d{6}\b", keep_last=2),
            Rule(kind="claim", pattern=r"\bCL\d{4}\b", validate=lambda s: s.endswith("7")),
        ),
    )
    got = Redactor(policy).text(f"member MBR-123456 claims CL1237 and CL1238, card {AMEX}")
    assert got.text == (
        "member [member_id ...56] claims [claim] and CL1238, card [card_number ****0005]"
    )
    assert got.removed == {"member_id": 1, "claim": 1, "card_number": 1}


def test_spoken_runs_read_hundreds_teens_and_months() -> None:
    assert [r.digits for r in runs("four hundred eleven and nineteen eighty-five")] == [
        "411",
        "1985",
    ]
    assert [r.digits for r in runs("four hundred and five")] == ["405"]
    assert [r.digits for r in runs("December twenty twenty-eight", months=True)] == ["122028"]
    assert runs("nothing numeric here") == []


@pytest.mark.parametrize(
    "text",
    [
        "four one one one, one one one one, one one one one, one one one one",
        "Forty-One eleven ELEVEN, double one 1111 uh triple one",
        "it expires December of twenty twenty-eight, the code is one two three",
        "someone said oneself, pancake, expert; tenth of March3, 4th and 3rd",
        "one_two twelve_twenty x1y2 O'Brien 12/28 4111-1111-1111-1111",
        "Hi, I'm calling about my appointment on the 14th at 3:30",
        "",
    ],
)
def test_the_one_pass_tokenizer_of_ascii_text_reads_what_the_word_by_word_one_does(
    text: str,
) -> None:
    from auditagent.redaction import spoken

    for months in (False, True):
        keep = spoken._VOCAB_MONTHS if months else spoken.VOCAB
        fast = spoken._ascii_tokens(text, keep)
        assert fast == spoken._any_tokens(text, months=months, words=True)
        assert spoken.runs_and_dated(text, words=True) == (
            runs(text, words=True),
            runs(text, months=True),
        )


@pytest.mark.parametrize("policy", ["pci", "pii"])
def test_superscripts_and_other_non_decimal_digits_are_words_not_a_failure(policy: str) -> None:
    """'²' is a digit to str.isdigit but not to int(): it once failed the step and dropped the
    whole text. It is kept as written, and a card next to it is still found."""
    r = Redactor(policy)
    out = r.text("the flat is 40 m² and one two three four five six seven")
    assert out.text == "the flat is 40 m² and one two three four five six seven"
    out = r.text("four one one one one one one one one one one one one one one one, 10³ ok")
    assert out.text == "[card_number ****1111], 10³ ok" and out.removed == {"card_number": 1}
    assert r.text('{"card_number": "4111 1111 1111 1111²"}').removed == {"card_number": 1}


def test_a_long_chain_of_hundreds_is_read_without_recursion() -> None:
    # "<unit> hundred and <rest>" read its rest by recursion: a long tool output of such a chain
    # overflowed the C stack (a crash of the agent's process) and, in Python, raised
    # RecursionError (the text then dropped, fail closed). A rest of three digits is never
    # taken, so it is no longer read.
    text = "one hundred and " * 200_000
    found = runs(text, words=True)
    assert len(found) == 200_000
    assert {r.digits for r in found} == {"100"}
    assert runs("one hundred and twelve", words=True)[0].digits == "112"
