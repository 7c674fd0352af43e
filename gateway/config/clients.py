"""``clients:``: who may call, by the SHA-256 of its secret, under which strategy."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from gateway.config.reader import Reader

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class ClientConfig:
    name: str
    secret_sha256: str = field(repr=False)
    strategy: str
    enabled: bool = True
    admin: bool = False  # may use the operator page and the admin API (/ui/, /admin/api/)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> str:
    return "lr-" + secrets.token_urlsafe(32)


def read_client(
    r: Reader, raw: Any, path: str, strategies: frozenset[str], digests: dict[str, str]
) -> ClientConfig | None:
    keys = {"name": True, "secret": False, "secret_sha256": False, "strategy": True, "enabled": False, "admin": False}
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    strategy = r.string(m["strategy"], f"{path}.strategy") if "strategy" in m else None
    if strategy is not None and strategy not in strategies:
        r.problem(f"{path}.strategy", f"unknown strategy {strategy!r}")
    enabled = r.boolean(m.get("enabled", True), f"{path}.enabled")
    admin = r.boolean(m.get("admin", False), f"{path}.admin")
    digest = None
    if ("secret" in m) == ("secret_sha256" in m):
        r.problem(path, "exactly one of 'secret' or 'secret_sha256' is required")
    elif "secret" in m:
        secret = r.string(m["secret"], f"{path}.secret")
        if secret is not None and len(secret) < MIN_SECRET_LENGTH:
            r.problem(f"{path}.secret", f"too short (at least {MIN_SECRET_LENGTH} characters)")
        elif secret is not None:
            digest = hash_secret(secret)
    else:
        digest = r.string(m["secret_sha256"], f"{path}.secret_sha256")
        if digest is not None and not _SHA256_RE.match(digest.lower()):
            r.problem(f"{path}.secret_sha256", "expected 64 hexadecimal characters")
            digest = None
        digest = digest.lower() if digest else None
    if digest is not None and digest in digests:
        r.problem(path, f"has the same secret as client {digests[digest]!r}")
    elif digest is not None:
        digests[digest] = name or path
    if not (name and strategy and digest) or enabled is None or admin is None:
        return None
    return ClientConfig(name, digest, strategy, enabled, admin)
