"""Personal data for the ``pii`` policy: national ids (python-stdnum validators), phone numbers
(phonenumbers), email addresses, IBANs. Dates of birth are found with the card context rules
(see cards.py), since they too are only a date until named.

Every candidate is validated before it is removed: a number that looks like an SSN but is not a
valid one stays, like a 16-digit number failing Luhn.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from functools import cache

import phonenumbers
from stdnum import iban as stdnum_iban

from .hits import Hit
from .spoken import Run

# Written forms: a national id's own shape, or a bare number when the text names the id.
_SHAPES: dict[str, str] = {
    "us.ssn": r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
    "ca.sin": r"\b\d{3}[- ]\d{3}[- ]\d{3}\b",
    "br.cpf": r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b",
    "in_.aadhaar": r"\b[2-9]\d{3}[ -]\d{4}[ -]\d{4}\b",
    "es.dni": r"\b\d{8}-?[A-Z]\b",
    "es.nie": r"\b[XYZ]-?\d{7}-?[A-Z]\b",
    "it.codicefiscale": r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b",
    "fr.nir": r"\b[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}\b",
}
_NUMERIC = ("us.ssn", "ca.sin", "nl.bsn", "de.idnr", "gb.nhs", "in_.aadhaar", "br.cpf")
"""Ids that are only digits: a spoken run of digits is checked against these when named."""

EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
SPOKEN_EMAIL = re.compile(
    r"\b[\w.+-]+(?:\s+(?:dot|underscore|dash)\s+[\w+-]+)*\s+at\s+[\w-]+"
    r"(?:\s+dot\s+[\w-]+)*\s+dot\s+(?:com|org|net|edu|gov|io|co|uk|de|fr|us|ca|info|me)\b",
    re.I,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}", re.I)


@cache
def _validator(name: str) -> Callable[[str], bool] | None:
    try:
        mod = importlib.import_module(f"stdnum.{name}")
    except ImportError:
        return None
    fn: Callable[[str], bool] = mod.is_valid
    return fn


@cache
def _shape(name: str) -> re.Pattern[str] | None:
    pat = _SHAPES.get(name)
    return re.compile(pat, re.I) if pat else None


def national_id_hits(
    text: str, ids: tuple[str, ...], found: list[Run], *, named: bool
) -> list[Hit]:
    """Valid national ids written in their own shape; and, when ``named`` (the text or the
    agent's question names an id), any run of digits one of the numeric validators accepts."""
    out: list[Hit] = []
    for name in ids:
        valid = _validator(name)
        shape = _shape(name)
        if valid is None or shape is None:
            continue
        for m in shape.finditer(text):
            if valid(m.group().upper()):
                out.append(Hit(m.start(), m.end(), "national_id"))
    if named:
        numeric = [v for n in ids if n in _NUMERIC and (v := _validator(n)) is not None]
        for run in found:
            if 8 <= len(run.digits) <= 13 and any(v(run.digits) for v in numeric):
                out.append(Hit(run.start, run.end, "national_id"))
    return out


# A phone number written in digits: one cluster of 7-15 digits with spacing, dots, dashes or
# parentheses, maybe a leading "+". Clusters are validated one by one (phonenumbers' own
# matcher scans the whole text per region and costs ten times as much).
_PHONE_CLUSTER = re.compile(r"(?:\+|\()?\d[\d \t().\-/]{5,}\d")


def phone_hits(text: str, regions: tuple[str, ...], found: list[Run]) -> list[Hit]:
    out: list[Hit] = []
    for m in _PHONE_CLUSTER.finditer(text):
        cand = m.group()
        n = sum(c.isdecimal() for c in cand)
        if 7 <= n <= 15 and _valid_phone(cand, regions):
            out.append(Hit(m.start(), m.end(), "phone"))
    for run in found:
        if not 7 <= len(run.digits) <= 15:
            continue
        if all(text[i.start : i.end].isdecimal() for i in run.items):
            continue  # written digits: the clusters above have seen them
        if _valid_phone(run.digits, regions):
            # a "+" right before the run belongs to the number
            a = run.start - 1 if run.start and text[run.start - 1] == "+" else run.start
            out.append(Hit(a, run.end, "phone"))
    return out


def _valid_phone(digits: str, regions: tuple[str, ...]) -> bool:
    for region in regions:
        try:
            num = phonenumbers.parse(digits, None if digits.startswith("+") else region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return True
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None))
    except phonenumbers.NumberParseException:
        return False


def email_hits(text: str) -> list[Hit]:
    out = [Hit(m.start(), m.end(), "email") for m in EMAIL.finditer(text)]
    if " at " in text.lower():
        out += [Hit(m.start(), m.end(), "email") for m in SPOKEN_EMAIL.finditer(text)]
    return out


def iban_hits(text: str) -> list[Hit]:
    out: list[Hit] = []
    for m in _IBAN.finditer(text):
        cand = m.group()
        # the pattern may run on into the next word: shrink to the longest valid prefix
        for end in range(len(cand), 14, -1):
            if end < len(cand) and cand[end] != " ":
                continue
            piece = cand[:end].rstrip()
            if stdnum_iban.is_valid(piece.upper()):
                out.append(Hit(m.start(), m.start() + len(piece), "iban"))
                break
    return out
