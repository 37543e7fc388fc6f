"""Bearer tokens: minting, hashing for storage, and constant-time checks.

A token is a prefix (``AGT_`` agent, ``EBT_`` enrolment/bootstrap, ``ADM_`` admin) and 32 random
bytes in unpadded base64url. Only the SHA-256 hex digest of the whole token is stored; lookups go
by that digest on a unique index, and the raw token is shown once, when minted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

AGENT_PREFIX = "AGT_"
ENROLMENT_PREFIX = "EBT_"
ADMIN_PREFIX = "ADM_"
TOKEN_BYTES = 32

# 32 bytes are 43 characters of unpadded base64url.
_BODY = r"[A-Za-z0-9_-]{43}"
AGENT_TOKEN_RE = re.compile(rf"^{AGENT_PREFIX}{_BODY}$")
ENROLMENT_TOKEN_RE = re.compile(rf"^{ENROLMENT_PREFIX}{_BODY}$")


def mint(prefix: str) -> str:
    """A fresh token: ``prefix`` + 32 random bytes, base64url without padding."""
    body = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()
    return prefix + body


def token_hash(token: str) -> str:
    """The stored form of ``token``: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def is_agent_token(token: str) -> bool:
    return AGENT_TOKEN_RE.fullmatch(token) is not None  # fullmatch: "$" allows a final "\n"


def is_enrolment_token(token: str) -> bool:
    return ENROLMENT_TOKEN_RE.fullmatch(token) is not None
