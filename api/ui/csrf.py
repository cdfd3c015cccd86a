"""CSRF tokens for the review UI's forms.

A signed-in form carries a token derived one way from the sign-in's secret (which only the
HttpOnly cookie holds), so a page that shows the token cannot be used to recover the cookie,
and a site that cannot read our pages cannot make one. The sign-in form, before any sign-in
exists, uses the same derivation over a random pre-sign-in cookie (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_LABEL = b"auditagent/ui/csrf/v1\0"

FIELD = "csrf"
"""The form field every state-changing form carries."""


def token_for(secret: str) -> str:
    return hashlib.sha256(_LABEL + secret.encode("utf-8", "surrogatepass")).hexdigest()


def matches(secret: str | None, given: str | None) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(token_for(secret), given)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
