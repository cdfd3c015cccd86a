"""Tool arguments and results: JSON walked by key names and values; loose text by key=value."""

from __future__ import annotations

import json
from dataclasses import replace

from auditagent.redaction import PCI, Redactor, redact_json_text, redact_value

PCI_R = Redactor()


def test_the_healthcare_example_arguments_keep_nothing_but_the_last_four() -> None:
    raw = json.dumps(
        {
            "card_number": "4111 1111 1111 1111",
            "security_code": "123",
            "expiration_month": 12,
            "expiration_year": 2028,
            "cardholder": "Ann Example",
        }
    )
    got = redact_json_text(PCI_R, raw)
    assert json.loads(got.text) == {
        "card_number": "[card_number ****1111]",
        "security_code": "[security_code]",
        "expiration_month": "[expiry]",
        "expiration_year": "[expiry]",
        "cardholder": "Ann Example",
    }
    assert got.removed == {"card_number": 1, "security_code": 1, "expiry": 2}


def test_keys_in_any_spelling_and_nested_card_objects() -> None:
    value = {
        "payment": {
            "Card": {"number": 4111111111111111, "code": 123, "month": 4, "year": 27},
            "CVV2": 999,
            "exp-date": "04/27",
            "cardPin": "1234",
            "track2": ";4111111111111111=2812?",
        },
        "items": [{"sku": "A-1", "qty": 2}],
        "note": "card 5555 5555 5555 4444 on file",
    }
    out, counts = redact_value(PCI_R, value)
    assert out["payment"]["Card"] == {
        "number": "[card_number ****1111]",
        "code": "[security_code]",
        "month": "[expiry]",
        "year": "[expiry]",
    }
    assert out["payment"]["CVV2"] == "[security_code]"
    assert out["payment"]["exp-date"] == "[expiry]"
    assert out["payment"]["cardPin"] == "[pin]"
    assert out["payment"]["track2"] == "[track_data]"
    assert out["items"] == [{"sku": "A-1", "qty": 2}]
    assert out["note"] == "card [card_number ****4444] on file"
    assert counts == {
        "card_number": 2,
        "security_code": 2,
        "expiry": 3,
        "pin": 1,
        "track_data": 1,
    }


def test_a_bare_integer_card_number_under_any_key_is_removed_and_others_kept() -> None:
    out, counts = redact_value(PCI_R, {"ref": 4111111111111111, "order": 1234567890123456, "n": 7})
    assert out == {"ref": "[card_number ****1111]", "order": 1234567890123456, "n": 7}
    assert counts == {"card_number": 1}


def test_nothing_found_keeps_the_raw_string_byte_for_byte() -> None:
    raw = '{"a":1,  "b": "two"}'
    got = redact_json_text(PCI_R, raw)
    assert got.text == raw and got.removed == {}


def test_arguments_that_are_not_json_are_redacted_by_key_and_value() -> None:
    got = redact_json_text(PCI_R, "{'card_number': '4111111111111111', 'cvv': '123', 'exp")
    assert got.text == "{'card_number': '[card_number ****1111]', 'cvv': '[security_code]', 'exp"
    got = redact_json_text(PCI_R, "card number: 4111 1111 1111 1111, security code=123, exp: 12/28")
    assert got.text == (
        "card number: [card_number ****1111], security code=[security_code], exp: [expiry]"
    )


def test_custom_keys_and_pii_keys() -> None:
    custom = Redactor(replace(PCI, keys={"member_id": "member_id"}))
    out, counts = redact_value(custom, {"memberId": "M-778", "email": "a@b.example"})
    assert out == {"memberId": "[member_id]", "email": "a@b.example"}
    out, counts = redact_value(
        Redactor("pii"), {"email": "a@b.example", "dob": "1985-04-12", "ssn": "123-45-6789"}
    )
    assert out == {"email": "[email]", "dob": "[date_of_birth]", "ssn": "[national_id]"}
    assert counts == {"email": 1, "date_of_birth": 1, "national_id": 1}


def test_off_walks_nothing() -> None:
    value = {"card_number": "4111111111111111", "cvv": "123"}
    assert redact_value(Redactor("off"), value) == (value, {})


def test_key_names_are_remembered_but_never_one_holding_card_data() -> None:
    redactor = Redactor("pci")
    raw = '{"card_number": "4111111111111111", "4111111111111111": "x", "note": "ok"}'
    first = redact_json_text(redactor, raw)
    assert first == redact_json_text(redactor, raw)  # the second call answers from the memo
    assert "4111111111111111" not in first.text
    assert first.removed == {"card_number": 2}
    remembered = {k for k, _ in redactor.key_memo}
    assert remembered == {"card_number", "note"}
