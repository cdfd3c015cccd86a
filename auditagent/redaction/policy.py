"""What to take out of a record before it is sealed: the ``pci`` (default), ``pii`` and ``off``
policies, and custom ones built from them.

A policy is a frozen value; the detectors read its switches. Custom rules add a kind of their own
(a pattern, optionally validated), and ``keys`` adds JSON key names for tool arguments::

    from dataclasses import replace
    from auditagent.redaction import PCI, Rule

    policy = replace(PCI, name="acme", fingerprint=True,
                     rules=(Rule(kind="member_id", pattern=r"\\bMBR-\\d{6}\\b"),),
                     keys={"member_id": "member_id"})
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Union

from ..errors import ConfigError

Kind = str
"""What was removed: ``card_number``, ``security_code``, ``expiry``, ``pin``, ``track_data``,
``national_id``, ``phone``, ``email``, ``iban``, ``date_of_birth``, or a custom rule's kind."""

PolicyName = Literal["pci", "pii", "off"]

NATIONAL_IDS: tuple[str, ...] = (
    "us.ssn",
    "ca.sin",
    "br.cpf",
    "in_.aadhaar",
    "es.dni",
    "es.nie",
    "it.codicefiscale",
    "fr.nir",
    "nl.bsn",
    "de.idnr",
    "gb.nhs",
)
"""python-stdnum validators the ``pii`` policy uses (``stdnum.<name>.is_valid``)."""


@dataclass(frozen=True)
class Rule:
    """A custom kind: every match of ``pattern`` (that ``validate`` accepts) is replaced by
    ``[kind]``; ``keep_last`` keeps that many trailing characters of the match visible."""

    kind: Kind
    pattern: str | re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    keep_last: int = 0

    def compiled(self) -> re.Pattern[str]:
        if isinstance(self.pattern, re.Pattern):
            return self.pattern
        return re.compile(self.pattern, re.IGNORECASE)


@dataclass(frozen=True)
class RedactionPolicy:
    """Switches for each kind of data, plus custom rules and key names."""

    name: str
    cards: bool = True
    """Card numbers (12-19 digits passing Luhn) in digits or words, and card fields by key."""
    security_codes: bool = True
    """Security codes (and PINs, track data) when asked for, named or under a card key."""
    expiry: bool = True
    """Expiry dates when asked for, named or under a card key."""
    national_ids: tuple[str, ...] = ()
    """python-stdnum modules (``us.ssn``, ...) whose valid numbers are removed."""
    phones: bool = False
    emails: bool = False
    ibans: bool = False
    dates_of_birth: bool = False
    """Dates named as a date of birth, or given when one was asked for."""
    phone_regions: tuple[str, ...] = ("US", "GB")
    """Regions tried for phone numbers written without a country code."""
    keep_last4: bool = True
    """A card number's placeholder keeps its last four digits (PCI DSS 3.4.1 allows it)."""
    fingerprint: bool = False
    """Add a keyed fingerprint of the card number to its placeholder (needs a key)."""
    rules: tuple[Rule, ...] = ()
    keys: Mapping[str, Kind] = field(default_factory=dict)
    """Extra JSON key names (any case, ``_``/``-``/spaces ignored) -> kind."""

    @property
    def enabled(self) -> bool:
        return bool(
            self.cards
            or self.security_codes
            or self.expiry
            or self.national_ids
            or self.phones
            or self.emails
            or self.ibans
            or self.dates_of_birth
            or self.rules
            or self.keys
        )


PCI = RedactionPolicy(name="pci")
"""The default: card numbers, security codes and expiry dates."""

PII = RedactionPolicy(
    name="pii",
    national_ids=NATIONAL_IDS,
    phones=True,
    emails=True,
    ibans=True,
    dates_of_birth=True,
)
"""``pci`` plus national ids, phone numbers, email addresses, IBANs and dates of birth."""

OFF = RedactionPolicy(name="off", cards=False, security_codes=False, expiry=False, keep_last4=False)
"""Nothing is removed (a deployment that pauses recording around payments itself)."""

NAMED: dict[str, RedactionPolicy] = {"pci": PCI, "pii": PII, "off": OFF}

PolicyLike = Union[RedactionPolicy, str, None]  # noqa: UP007 - runtime alias on 3.10


def resolve_policy(value: PolicyLike, *, default: RedactionPolicy = PCI) -> RedactionPolicy:
    """A policy from a name (``pci``/``pii``/``off``, any case), an object, or None (default)."""
    if value is None:
        return default
    if isinstance(value, RedactionPolicy):
        return value
    policy = NAMED.get(value.strip().lower())
    if policy is None:
        raise ConfigError(
            f"unknown redaction policy {value!r}",
            fix="use pci (the default), pii, off, or a RedactionPolicy object",
        )
    return policy
