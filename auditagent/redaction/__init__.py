"""Keep out what must not be kept: card data (and, with ``pii``, personal data) is removed from
every text a record carries before the record is sealed.

``pci`` (the default) removes card numbers, security codes and expiry dates; ``pii`` adds
national ids, phone numbers, email addresses, IBANs and dates of birth; ``off`` removes nothing.
See docs/redaction.md.
"""

from __future__ import annotations

from .cards import Expect
from .policy import NATIONAL_IDS, OFF, PCI, PII, PolicyLike, RedactionPolicy, Rule, resolve_policy
from .redactor import Conversation, Fingerprint, Redacted, Redactor
from .structured import redact_json_text, redact_value

__all__ = [
    "NATIONAL_IDS",
    "OFF",
    "PCI",
    "PII",
    "Conversation",
    "Expect",
    "Fingerprint",
    "PolicyLike",
    "Redacted",
    "RedactionPolicy",
    "Redactor",
    "Rule",
    "redact_json_text",
    "redact_value",
    "resolve_policy",
]
