"""The agent asks, the caller answers: what a question makes sensitive in the next turns."""

from __future__ import annotations

import os
import subprocess
import sys

from auditagent.redaction import Expect, Redactor


def test_security_code_asked_then_answered_in_the_next_turn() -> None:
    conv = Redactor().conversation()
    asked = conv.agent("Thanks. What are the three digits on the back of the card?", at=0)
    assert asked.removed == {}
    assert Expect.SECURITY_CODE in conv.expecting
    got = conv.user("sure, it's seven eight nine", at=4)
    assert got.text == "sure, it's [security_code]"
    # an interim and a final of the same answer are both covered
    assert conv.user("seven eight", at=3).removed == {}  # two digits: not a code yet
    assert conv.user("789", at=5).text == "[security_code]"


def test_expiry_asked_then_answered_in_words() -> None:
    conv = Redactor().conversation()
    conv.agent("And the expiration date, please?", at=0)
    assert conv.user("oh four twenty seven", at=2).text == "[expiry]"
    assert conv.user("April twenty twenty-seven", at=3).text == "[expiry]"


def test_card_number_read_out_over_two_utterances() -> None:
    conv = Redactor().conversation()
    conv.agent("Please read me the card number.", at=0)
    first = conv.user("four one one one, one one one one", at=2)
    second = conv.user("one one one one, one one one one", at=5)
    assert first.text == "[card_number]"
    assert second.text == "[card_number]"
    assert "****" not in first.text + second.text  # a part says no last four


def test_a_question_covers_answers_until_the_agent_speaks_again_plus_a_grace() -> None:
    conv = Redactor().conversation()
    conv.agent("What is the CVV?", at=0)
    conv.agent("Take your time.", at=1)  # the ask stays for the grace period
    assert conv.user("123", at=6).text == "[security_code]"
    assert conv.user("123", at=60).text == "123"  # long after: a room number is a room number
    assert conv.expecting == set()


def test_without_a_question_three_digits_are_kept() -> None:
    conv = Redactor().conversation()
    conv.agent("Which room are you in?", at=0)
    assert conv.user("room 123", at=1).text == "room 123"


def test_the_agent_reading_back_card_data_is_redacted_too() -> None:
    conv = Redactor().conversation()
    got = conv.agent("I have 4111 1111 1111 1111, expiring 12/28, security code 123.", at=0)
    assert (
        got.text
        == "I have [card_number ****1111], expiring [expiry], security code [security_code]."
    )


def test_off_policy_neither_redacts_nor_expects() -> None:
    conv = Redactor("off").conversation()
    conv.agent("What is the security code?", at=0)
    assert conv.expecting == set()
    assert conv.user("123", at=1).text == "123"


def test_pii_questions_cover_dates_of_birth_and_national_ids() -> None:
    conv = Redactor("pii").conversation()
    conv.agent("Can you confirm your date of birth?", at=0)
    assert conv.user("April twelfth, nineteen eighty-five", at=2).text == "[date_of_birth]"
    conv.agent("And your social security number?", at=3)
    got = conv.user("one two three, four five, six seven eight nine", at=5)
    assert got.removed == {"national_id": 1}
    assert "nine" not in got.text


def test_the_newest_question_names_the_answer() -> None:
    conv = Redactor().conversation()
    conv.agent("Please read me the card number.", at=0)
    assert conv.user("4929 8173 5526 4190", at=3).text == "[card_number ****4190]"
    conv.agent("Thanks. What is the security code on the back of the card?", at=5)
    assert conv.user("7391", at=8).text == "[security_code]"
    conv.agent("And when does it expire?", at=10)
    assert conv.user("eleven twenty-nine", at=12).text == "[expiry]"


_ONE_SENTENCE_TWO_ASKS = """
from auditagent.redaction import Redactor
conv = Redactor("pci").conversation()
conv.agent("Thanks. The expiry date and the security code, please?", at=0.0)
print(conv.user("twelve twenty-eight, and it's one two three", at=1.0))
"""


def test_a_sentence_asking_for_two_things_is_read_the_same_in_every_process() -> None:
    # Which of the two counts as the newer question came from a set's order, which the hash
    # seed decides: the same answer was sealed as two expiries in one process and as two
    # security codes in another. The kind named first is now read first, in every process.
    outs = {
        subprocess.run(
            [sys.executable, "-c", _ONE_SENTENCE_TWO_ASKS],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            check=True,
        ).stdout
        for seed in (1, 2, 3, 4, 5)
    }
    assert len(outs) == 1, outs
    (out,) = outs
    assert "twenty" not in out and "one two three" not in out
    assert "'expiry': 2" in out
