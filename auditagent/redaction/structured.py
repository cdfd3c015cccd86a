"""Tool arguments and results: walk the JSON, match on key names and on values.

A value under a key that names card data (``card_number``, ``cvv``, ``security_code``,
``expiration_month``, ...) is replaced whatever it looks like; every other string is redacted
as text, and a bare integer of 12-19 digits passing Luhn is a card number too. Text that is not
JSON (models produce truncated or single-quoted arguments) is redacted as text, and values
after a sensitive key name in it (``cvv: 123``, ``'card': '4111...'``) are removed as well.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .cards import luhn_valid
from .hits import Hit, merge
from .policy import RedactionPolicy
from .redactor import Redacted, Redactor, add_counts

_CARD_KEYS = frozenset(
    {
        "card",
        "cardnumber",
        "cardno",
        "cardnum",
        "pan",
        "cc",
        "ccnumber",
        "ccnum",
        "creditcard",
        "creditcardnumber",
        "debitcard",
        "debitcardnumber",
        "primaryaccountnumber",
        "paymentcard",
    }
)
_CODE_KEYS = frozenset(
    {
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "csc",
        "cid",
        "cvn",
        "securitycode",
        "cardsecuritycode",
        "cardverificationvalue",
        "cardverificationcode",
        "cardcode",
    }
)
_EXPIRY_KEYS = frozenset({"exp", "expmonth", "expyear", "expdate", "validthru", "validuntil"})
_PII_KEYS = {
    **dict.fromkeys(
        (
            "ssn",
            "socialsecuritynumber",
            "sin",
            "socialinsurancenumber",
            "nationalid",
            "nationalidnumber",
            "taxid",
            "nino",
            "bsn",
            "aadhaar",
            "cpf",
            "passportnumber",
        ),
        "national_id",
    ),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday"), "date_of_birth"),
    **dict.fromkeys(
        ("phone", "phonenumber", "mobile", "telephone", "tel", "cell", "callbacknumber"), "phone"
    ),
    **dict.fromkeys(("email", "emailaddress", "mail"), "email"),
    "iban": "iban",
}
# keys that mean card data only inside an object that is itself card data: {"card": {...}}
_IN_CARD = {"number": "card_number", "no": "card_number", "num": "card_number",
            "code": "security_code", "month": "expiry", "year": "expiry",
            "expiry": "expiry", "pin": "pin"}  # fmt: skip

_NORM = re.compile(r"[^a-z0-9]")
KEY_MEMO_MAX = 1024
"""Key names remembered per redactor (a bound against a tool that makes up its keys)."""
KEY_MEMO_LEN = 64


def norm_key(key: str) -> str:
    return _NORM.sub("", key.lower())


def key_kind(policy: RedactionPolicy, key: str, *, in_card: bool = False) -> str | None:
    """The kind a JSON key name says its value is, under ``policy`` (None: nothing said)."""
    k = norm_key(key)
    for name, kind in policy.keys.items():
        if norm_key(name) == k:
            return kind
    if in_card and k in _IN_CARD:
        return _IN_CARD[k]
    if policy.cards and (k in _CARD_KEYS or "cardnumber" in k):
        return "card_number"
    if policy.security_codes:
        if k in _CODE_KEYS or "securitycode" in k or "cvv" in k or "cvc" in k:
            return "security_code"
        if k in ("pin", "pinblock", "cardpin"):
            return "pin"
        if k in ("track1", "track2", "trackdata", "track1data", "track2data", "magstripe"):
            return "track_data"
    if policy.expiry and (k in _EXPIRY_KEYS or "expir" in k):
        return "expiry"
    pii = _PII_KEYS.get(k)
    if pii is not None and _pii_on(policy, pii):
        return pii
    return None


def _pii_on(policy: RedactionPolicy, kind: str) -> bool:
    return {
        "national_id": bool(policy.national_ids),
        "date_of_birth": policy.dates_of_birth,
        "phone": policy.phones,
        "email": policy.emails,
        "iban": policy.ibans,
    }[kind]


class _Walk:
    def __init__(self, redactor: Redactor) -> None:
        self.r = redactor
        self.counts: dict[str, int] = {}

    def forced(self, kind: str, value: Any) -> Any:
        if value is None or isinstance(value, bool) or value == "":
            return value
        if isinstance(value, dict):
            return {k: self.forced(kind, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.forced(kind, v) for v in value]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "card_number":
            return self.r.card_placeholder("".join(filter(str.isdecimal, str(value))))
        return f"[{kind}]"

    def key(self, k: str, in_card: bool) -> tuple[str, str | None]:
        """A key as kept, and the kind it names: a tool sends the same few key names again and
        again, so the answer is remembered (it depends only on the key and the policy)."""
        memo = self.r.key_memo
        got = memo.get((k, in_card))
        if got is None:
            red = self.r.text(k)
            got = (red.text, red.removed, key_kind(self.r.policy, k, in_card=in_card))
            # a key that held something to remove (a card number as a key) is not kept around
            if not red.removed and len(k) <= KEY_MEMO_LEN:
                if len(memo) >= KEY_MEMO_MAX:
                    memo.clear()
                memo[(k, in_card)] = got
        add_counts(self.counts, got[1])
        return got[0], got[2]

    def value(self, value: Any, *, in_card: bool = False) -> Any:
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                key, kind = self.key(k, in_card) if isinstance(k, str) else (k, None)
                if kind == "card_number" and isinstance(v, (dict, list)):
                    out[key] = self.value(v, in_card=True)
                elif kind is not None:
                    out[key] = self.forced(kind, v)
                else:
                    out[key] = self.value(v, in_card=in_card)
            return out
        if isinstance(value, list):
            return [self.value(v, in_card=in_card) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool) and self.r.policy.cards:
            digits = str(abs(value))
            if 12 <= len(digits) <= 19 and luhn_valid(digits):
                self.counts["card_number"] = self.counts.get("card_number", 0) + 1
                return self.r.card_placeholder(digits)
        return value

    def text(self, text: str) -> str:
        red = self.r.text(text)
        add_counts(self.counts, red.removed)
        return red.text


def redact_value(redactor: Redactor, value: Any) -> tuple[Any, dict[str, int]]:
    """A decoded JSON value (or any dict/list of plain values) with sensitive parts replaced."""
    if not redactor.enabled:
        return value, {}
    w = _Walk(redactor)
    out = w.value(value)
    return out, w.counts


KEY_HINTS = ("card", "pan", "cc", "cv", "csc", "cid", "secur", "verif", "exp", "valid", "pin",
              "track", "mag")  # fmt: skip
"""Substrings of the key names that name card data (the C screen's hints in step.py)."""
_PII_KEY_HINTS = ("ssn", "sin", "social", "national", "tax", "nino", "bsn", "aadhaar", "cpf",
                  "passport", "dob", "birth", "phone", "mobile", "tel", "cell", "mail",
                  "iban")  # fmt: skip


def _names_a_key(policy: RedactionPolicy, raw: str) -> bool:
    """Whether ``raw`` may hold a key naming sensitive data (substrings: a cheap superset)."""
    low = raw.lower()
    if any(h in low for h in KEY_HINTS) or any(
        norm_key(k) in _NORM.sub("", low) for k in policy.keys
    ):
        return True
    pii = policy.national_ids or policy.phones or policy.emails or policy.ibans
    return bool(pii or policy.dates_of_birth) and any(h in low for h in _PII_KEY_HINTS)


# key = value pairs in text that is not JSON: "cvv": "123", card_number=4111..., 'exp': '12/28'
_PAIR = re.compile(
    r"""(?P<key>[A-Za-z][\w \-]{0,40}?)["']?\s*[:=]\s*"""
    r"""(?P<val>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^,;}\]\s][^,;}\]\n]*)"""
)


def redact_json_text(redactor: Redactor, raw: str) -> Redacted:
    """Tool arguments or results as the model or tool produced them (JSON or not)."""
    if not raw or not redactor.enabled:
        return Redacted(raw)
    # the key test first: it is a few substring tests, and a tool's card data is named by key
    if not _names_a_key(redactor.policy, raw) and not redactor.hits(raw):
        return Redacted(raw)  # nothing in the values and no key that could name card data
    stripped = raw.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            value = json.loads(raw)
        except ValueError:
            pass
        else:
            out, counts = redact_value(redactor, value)
            if not counts:
                return Redacted(raw)
            return Redacted(json.dumps(out, ensure_ascii=False), counts)
    return _loose(redactor, raw)


def _loose(redactor: Redactor, raw: str) -> Redacted:
    hits = list(redactor.hits(raw))
    for m in _PAIR.finditer(raw):
        key = m.group("key").strip()
        kind = key_kind(redactor.policy, key) or key_kind(redactor.policy, key.split()[-1])
        if kind is None:
            continue
        a, b = m.span("val")
        val = m.group("val")
        if val[:1] in ("'", '"'):
            a += 1
            b -= 1 if len(val) > 1 and val[-1] == val[0] else 0
        if b <= a:
            continue
        digits = "".join(filter(str.isdecimal, raw[a:b])) if kind == "card_number" else ""
        hits.append(Hit(a, b, kind, digits=digits))
    return redactor.apply(raw, merge(hits))
