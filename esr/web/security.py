"""Secrets and masking: Argon2id passwords, random session ids and API tokens (stored as SHA-256 digests),
constant-time comparison, and the masking of national insurance numbers and dates of birth."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's "second recommended option" (Argon2id, t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
# Verified when the username is unknown, so that a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
TOKEN_PREFIX = "esr_"
MASK = "••••••••"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Passwords must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Passwords must be at most {MAX_PASSWORD_LENGTH} characters."
    return None


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + new_secret()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


# -- masking ----------------------------------------------------------------------------------------

_SENSITIVE_FIELDS = {"ninumber", "nationalinsurancenumber", "nino", "dateofbirth", "dob", "birthdate"}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def is_sensitive_field(name: object) -> bool:
    return isinstance(name, str) and _NOT_ALNUM.sub("", name.lower()) in _SENSITIVE_FIELDS


def mask_sensitive(value: Any) -> Any:
    """A copy of a JSON value with national insurance numbers and dates of birth replaced by MASK.

    Handles both {"field": "ni_number", "old": ..., "new": ...} items and plain {"ni_number": ...} keys,
    at any depth, so change events and before/after images are covered whatever their shape.
    """
    if isinstance(value, list):
        return [mask_sensitive(v) for v in value]
    if isinstance(value, dict):
        if is_sensitive_field(value.get("field")):
            return {k: (MASK if k not in ("field", "name") and v is not None else v) for k, v in value.items()}
        return {k: (MASK if is_sensitive_field(k) and v is not None else mask_sensitive(v)) for k, v in value.items()}
    return value


_NI = re.compile(r"^[A-Z]{2}\d{6}[A-D]?$")


def normalise_ni(text: str) -> str | None:
    """The NI number in `text` (spaces ignored, any case), or None if it does not look like one."""
    candidate = re.sub(r"\s+", "", text).upper()
    return candidate if _NI.match(candidate) else None
