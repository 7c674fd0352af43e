"""OAuth access tokens that any replica can check without shared state: signed, not stored.

A token is ``lrat.<payload>.<mac>``, both parts base64url: the payload names the client, its expiry
and a fingerprint of the client's secret hash; the mac is HMAC-SHA256 over it with the signing key.
A token therefore stops working when it expires, when the signing key changes, when its client's
secret changes, and (checked by the registry on every use) when its client is disabled or removed.

The operator page's session cookie (``lras.<payload>.<mac>``) is made the same way, under a context of its
own so that neither passes for the other, and carries a random session id: two logins never share a cookie,
and a logout revokes that one id (gateway.auth.overrides keeps the revoked ids until the cookie would expire).
Its CSRF token is a MAC of the cookie, so every worker and replica sharing the key checks both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from typing import NamedTuple

PREFIX = "lrat."
SESSION_PREFIX = "lras."
SESSION_COOKIE = "lr_admin"  # the operator page's session cookie (gateway.api.admin.session)
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = 8 * 3600
_CONTEXT = b"localrouter access token v1|"
_SESSION_CONTEXT = b"localrouter admin session v2|"  # v2: with a session id
_CSRF_CONTEXT = b"localrouter admin csrf v1|"
_FINGERPRINT = 16  # hex characters of the client's secret hash carried in the token
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: only the one spelling :func:`_b64` writes decodes. Lenient base64 skips characters outside
    the alphabet and ignores padding and unused bits, so one token would have many accepted spellings."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def fingerprint(secret_sha256: str) -> str:
    return secret_sha256[:_FINGERPRINT]


class Seal:
    """``<prefix><payload>.<mac>``, both base64url: the payload signed with HMAC-SHA256 under one key and
    for one purpose (``context``), so what is sealed for one purpose never opens as another (an access
    token is no MCP session id). Anything holding the key can open it: no shared state."""

    __slots__ = ("_context", "_key", "_prefix")

    def __init__(self, key: bytes, prefix: str, context: bytes) -> None:
        self._key, self._prefix, self._context = key, prefix, context

    def __repr__(self) -> str:
        return f"Seal(prefix={self._prefix!r})"

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, self._context + payload, hashlib.sha256).digest()

    def seal(self, payload: bytes) -> str:
        return f"{self._prefix}{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, sealed: str) -> bytes | None:
        """The payload of a genuine seal, else None."""
        body, sep, mac = sealed[len(self._prefix) :].partition(".")
        if not sealed.startswith(self._prefix) or not sep:
            return None
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        return payload if hmac.compare_digest(self._mac(payload), given) else None

    def mac(self, data: bytes) -> str:
        """A MAC of ``data`` for this purpose, base64url (what a seal carries, without the data)."""
        return _b64(self._mac(data))


class SessionClaims(NamedTuple):
    """What an admin session cookie says: whose it is, until when, for which secret, and its own id."""

    client: str
    expires: int
    fingerprint: str
    id: str


def _opened(seal: Seal, token: str, now: float | None, parts: int) -> list[str] | None:
    """The ``parts`` fields of a genuine unexpired ``client|expiry|...`` seal, else None."""
    payload = seal.open(token)
    if payload is None:
        return None
    try:
        found = payload.decode().split("|")
        if len(found) != parts or int(found[1]) <= (now if now is not None else time.time()):
            return None
    except ValueError:
        return None
    return found


class TokenSigner:
    __slots__ = ("_csrf", "_seal", "_session", "ttl")

    def __init__(self, key: bytes, ttl: int) -> None:
        self._seal = Seal(key, PREFIX, _CONTEXT)
        self._session = Seal(key, SESSION_PREFIX, _SESSION_CONTEXT)
        self._csrf = Seal(key, "", _CSRF_CONTEXT)
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"TokenSigner(ttl={self.ttl})"

    def issue(self, client: str, secret_sha256: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.ttl
        return self._seal.seal(f"{client}|{expires}|{fingerprint(secret_sha256)}".encode())

    def verify(self, token: str, now: float | None = None) -> tuple[str, str] | None:
        """``(client name, secret fingerprint)`` of a genuine unexpired token, else None."""
        found = _opened(self._seal, token, now, 3)
        return (found[0], found[2]) if found is not None else None

    def issue_session(self, client: str, secret_sha256: str, ttl: int, now: float | None = None) -> tuple[str, int]:
        """An admin's session cookie value (with a fresh session id), and when it expires (Unix seconds)."""
        expires = int(now if now is not None else time.time()) + ttl
        sid = secrets.token_urlsafe(16)
        return self._session.seal(f"{client}|{expires}|{fingerprint(secret_sha256)}|{sid}".encode()), expires

    def verify_session(self, cookie: str, now: float | None = None) -> SessionClaims | None:
        """What a genuine unexpired session cookie says, else None (revocation is the caller's check)."""
        found = _opened(self._session, cookie, now, 4)
        return SessionClaims(found[0], int(found[1]), found[2], found[3]) if found is not None else None

    def csrf(self, cookie: str) -> str:
        """The CSRF token that goes with a session cookie: only who holds the key can make it, and only a
        page that was given it at login (the cookie itself is HttpOnly) can send it."""
        return self._csrf.mac(cookie.encode())

    def csrf_matches(self, cookie: str, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.csrf(cookie).encode())
