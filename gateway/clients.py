"""Who a bearer token belongs to: clients indexed by the SHA-256 of their secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from gateway.config import Config
from gateway.routing import Policy, Principal


class ClientRegistry:
    """O(1) lookup by hash; the secrets themselves are never held."""

    def __init__(self, config: Config, policies: Mapping[str, Policy]) -> None:
        self._by_digest = {
            c.secret_sha256: Principal(c, policies[c.strategy]) for c in config.clients
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def identify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        principal = self._by_digest.get(digest)
        if principal is None or not hmac.compare_digest(principal.client.secret_sha256, digest):
            return None
        return principal
