"""Who a bearer token belongs to: a client secret (by its SHA-256) or a signed access token."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Container, Mapping

from gateway.auth.tokens import PREFIX, SessionClaims, TokenSigner, fingerprint
from gateway.config import ClientConfig, Config, hash_secret
from gateway.routing.router import Policy, Principal

INTERNAL_TEST_TOKEN = "internal-test"


class ClientRegistry:
    """O(1) lookup by hash; the secrets themselves are never held."""

    def __init__(self, config: Config, policies: Mapping[str, Policy], signer: TokenSigner) -> None:
        self._by_digest = {c.secret_sha256: Principal(c, policies[c.strategy]) for c in config.clients}
        self._by_name = {p.client.name: p for p in self._by_digest.values()}
        self.signer = signer
        auto = next((p.auto for p in policies.values() if p.auto), ())
        self.internal = Principal(
            ClientConfig(INTERNAL_TEST_TOKEN, "", INTERNAL_TEST_TOKEN),
            Policy(INTERNAL_TEST_TOKEN, re.compile(".*"), auto, {}),
        )

    def __len__(self) -> int:
        return len(self._by_digest)

    def identify(self, token: str) -> Principal | None:
        """The client a secret or a valid access token belongs to (enabled or not), else None."""
        if token.startswith(PREFIX):
            found = self.signer.verify(token)
            if found is not None:
                principal = self._by_name.get(found[0])
                if principal is not None and hmac.compare_digest(fingerprint(principal.client.secret_sha256), found[1]):
                    return principal
                return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        principal = self._by_digest.get(digest)
        if principal is None or not hmac.compare_digest(principal.client.secret_sha256, digest):
            return None
        return principal

    def session(self, cookie: str, revoked: Container[str]) -> tuple[Principal, SessionClaims] | None:
        """The client an admin session cookie belongs to, and what the cookie says; None when the cookie
        is not genuine, has expired, was logged out (its id is in ``revoked``), or its client's secret
        changed since."""
        found = self.signer.verify_session(cookie)
        if found is None or found.id in revoked:
            return None
        principal = self._by_name.get(found.client)
        if principal is None or not hmac.compare_digest(fingerprint(principal.client.secret_sha256), found.fingerprint):
            return None
        return principal, found

    def check_credentials(self, name: str, secret: str) -> Principal | None:
        """The client named ``name`` if ``secret`` is its secret (same work whether or not it exists)."""
        digest = hash_secret(secret)
        principal = self._by_name.get(name)
        expected = principal.client.secret_sha256 if principal is not None else "0" * 64
        if not hmac.compare_digest(expected, digest) or principal is None:
            return None
        return principal
