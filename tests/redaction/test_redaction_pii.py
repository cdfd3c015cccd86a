"""The ``pii`` policy: national ids, phone numbers, email addresses, IBANs, dates of birth."""

from __future__ import annotations

import pytest

from auditagent.redaction import Redactor

PII_R = Redactor("pii")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("my ssn is 123-45-6789", "national_id"),
        ("social security one two three four five six seven eight nine", "national_id"),
        ("SIN 046 454 286", "national_id"),
        ("CPF 390.533.447-05", "national_id"),
        ("codice fiscale RCCMNL83S18D969H", "national_id"),
        ("DNI 54362315K", "national_id"),
        ("call me at (415) 555-2671", "phone"),
        ("my number is +44 20 7946 0958", "phone"),
        ("four one five five five five two six seven one", "phone"),
        ("mail john.smith@example.com", "email"),
        ("it's john dot smith at gmail dot com", "email"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "iban"),
        ("iban de89370400440532013000", "iban"),
        ("date of birth April 12th 1985", "date_of_birth"),
        ("I was born on 04/12/1985", "date_of_birth"),
    ],
)
def test_pii_kinds_are_removed(text: str, kind: str) -> None:
    got = PII_R.text(text)
    assert got.removed == {kind: 1}, got
    assert f"[{kind}]" in got.text


@pytest.mark.parametrize(
    "text",
    [
        "my ssn is 078-05-1120",  # the Woolworth wallet number: not a valid SSN
        "it's 000-12-3456",
        "the meeting is at 3 pm in room 201",
        "IBAN GB00 WEST 1234 5698 7654 32",  # bad check digits
        "we met in April",
    ],
)
def test_invalid_or_unnamed_look_alikes_are_kept(text: str) -> None:
    assert PII_R.text(text).text == text


def test_pci_does_not_touch_personal_data() -> None:
    text = "ssn 123-45-6789, call (415) 555-2671, a@b.example"
    assert Redactor("pci").text(text).text == text


def test_pii_still_removes_card_data() -> None:
    got = PII_R.text("card 4111 1111 1111 1111 cvv 123")
    assert got.text == "card [card_number ****1111] cvv [security_code]"
