"""OAuth access tokens that any replica can check without shared state: signed, not stored.

A token is ``lrat.<payload>.<mac>``, both parts base64url: the payload names the client, its expiry
and a fingerprint of the client's secret hash; the mac is HMAC-SHA256 over it with the signing key.
A token therefore stops working when it expires, when the signing key changes, when its client's
secret changes, and (checked by the registry on every use) when its client is disabled or removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

PREFIX = "lrat."
_CONTEXT = b"localrouter access token v1|"
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

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()

    def issue(self, client: str, secret_sha256: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.ttl
        payload = f"{client}|{expires}|{fingerprint(secret_sha256)}".encode()
        return f"{PREFIX}{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, now: float | None = None) -> tuple[str, str] | None:
        """``(client name, secret fingerprint)`` of a genuine unexpired token, else None."""
        body, sep, mac = token[len(PREFIX) :].partition(".")
        if not token.startswith(PREFIX) or not sep:
            return None
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(self._mac(payload), given):
            return None
        try:
            client, expires, fp = payload.decode().split("|")
            if int(expires) <= (now if now is not None else time.time()):
                return None
        except ValueError:
            return None
        return client, fp
