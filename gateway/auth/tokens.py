"""OAuth access tokens that any replica can check without shared state: signed, not stored.

A token is ``lrat.<payload>.<mac>``, both parts base64url: the payload names the client, its expiry
and a fingerprint of the client's secret hash; the mac is HMAC-SHA256 over it with the signing key.
A token therefore stops working when it expires, when the signing key changes, when its client's
secret changes, and (checked by the registry on every use) when its client is disabled or removed.

The operator page's session cookie (``lras.<payload>.<mac>``) is made the same way, under a context of its
own so that neither passes for the other; its CSRF token is a MAC of the cookie, so nothing is stored and
every worker and replica sharing the key checks both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

PREFIX = "lrat."
SESSION_PREFIX = "lras."
SESSION_COOKIE = "lr_admin"  # the operator page's session cookie (gateway.api.admin.session)
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = 8 * 3600
_CONTEXT = b"localrouter access token v1|"
_SESSION_CONTEXT = b"localrouter admin session v1|"
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


class TokenSigner:
    __slots__ = ("_key", "ttl")

    def __init__(self, key: bytes, ttl: int) -> None:
        self._key = key
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"TokenSigner(ttl={self.ttl})"

    def _mac(self, payload: bytes, context: bytes = _CONTEXT) -> bytes:
        return hmac.new(self._key, context + payload, hashlib.sha256).digest()

    def _sign(self, prefix: str, context: bytes, payload: bytes) -> str:
        return f"{prefix}{_b64(payload)}.{_b64(self._mac(payload, context))}"

    def _open(self, prefix: str, context: bytes, token: str, now: float | None) -> tuple[str, int, str] | None:
        """``(client, expiry, fingerprint)`` of a genuine unexpired ``token``, else None."""
        body, sep, mac = token[len(prefix) :].partition(".")
        if not token.startswith(prefix) or not sep:
            return None
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(self._mac(payload, context), given):
            return None
        try:
            client, expires, fp = payload.decode().split("|")
            if int(expires) <= (now if now is not None else time.time()):
                return None
        except ValueError:
            return None
        return client, int(expires), fp

    def issue(self, client: str, secret_sha256: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.ttl
        payload = f"{client}|{expires}|{fingerprint(secret_sha256)}".encode()
        return self._sign(PREFIX, _CONTEXT, payload)

    def verify(self, token: str, now: float | None = None) -> tuple[str, str] | None:
        """``(client name, secret fingerprint)`` of a genuine unexpired token, else None."""
        found = self._open(PREFIX, _CONTEXT, token, now)
        return (found[0], found[2]) if found is not None else None

    def issue_session(self, client: str, secret_sha256: str, ttl: int, now: float | None = None) -> tuple[str, int]:
        """An admin's session cookie value, and when it expires (Unix seconds)."""
        expires = int(now if now is not None else time.time()) + ttl
        payload = f"{client}|{expires}|{fingerprint(secret_sha256)}".encode()
        return self._sign(SESSION_PREFIX, _SESSION_CONTEXT, payload), expires

    def verify_session(self, cookie: str, now: float | None = None) -> tuple[str, int, str] | None:
        """``(client name, expiry, secret fingerprint)`` of a genuine unexpired session cookie, else None."""
        return self._open(SESSION_PREFIX, _SESSION_CONTEXT, cookie, now)

    def csrf(self, cookie: str) -> str:
        """The CSRF token that goes with a session cookie: only who holds the key can make it, and only a
        page that was given it at login (the cookie itself is HttpOnly) can send it."""
        return _b64(self._mac(cookie.encode(), _CSRF_CONTEXT))
