"""``auth:``: the lifetime of access tokens and the key that signs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Reader, Secret

MIN_SIGNING_KEY_LENGTH = 32
SIGNING_KEY_ENV = "LOCALROUTER_SIGNING_KEY"


@dataclass(frozen=True)
class AuthConfig:
    """OAuth access tokens: their lifetime, and the key that signs them (``None``: one random key per
    process, so tokens work only on the process that issued them)."""

    token_ttl: int = 3600
    signing_key: Secret | None = None


def read_auth(r: Reader, raw: Any, env: Mapping[str, str]) -> AuthConfig:
    m = r.mapping(raw, "auth", {"token_ttl": False, "signing_key": False}) or {}
    ttl = r.number(m["token_ttl"], "auth.token_ttl", integer=True) if "token_ttl" in m else AuthConfig.token_ttl
    key = (
        r.string(m["signing_key"], "auth.signing_key")
        if m.get("signing_key") is not None
        else env.get(SIGNING_KEY_ENV) or None
    )
    if key is not None and len(key) < MIN_SIGNING_KEY_LENGTH:
        where = "auth.signing_key" if "signing_key" in m else f"environment variable {SIGNING_KEY_ENV}"
        r.problem(where, f"too short (at least {MIN_SIGNING_KEY_LENGTH} characters)")
        key = None
    return AuthConfig(ttl or AuthConfig.token_ttl, Secret(key) if key else None)
