"""What the firewall's tests share: a config with rules, an admin client, and the admin's side of approvals."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests import leakcheck
from tests.conftest import ALICE

ROOT_SECRET = "lr-root-admin-secret-0123456789ab"
leakcheck.register(ROOT_SECRET)
# planted in prompts: none may reach a log line or an answer (the leak check reads every log line)
AWS_KEY = "AKIAQ7X2MZ4KJPLR5WTE"
GITHUB_TOKEN = "ghp_" + "Zq8Lm2Xv9Rt4Yp6Wn1Ks3Hd5Jf7Gb0Ca2Ee4"
STRIPE_KEY = "sk_live_" + "9fKq2LxM4pTz7RwB1nVc8dYh"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq8Zl2Xv9Rt4Yp6Wn1Ks3Hd5Jf7Gb0\n-----END RSA PRIVATE KEY-----"
DB_PASSWORD = "Zx9kq2LmP0vT7wRb"
leakcheck.register(AWS_KEY, GITHUB_TOKEN, STRIPE_KEY, DB_PASSWORD, "MIIEowIBAAKCAQEAq8Zl2Xv9Rt4Yp6Wn1Ks3Hd5Jf7Gb0")
ROOT = {"Authorization": f"Bearer {ROOT_SECRET}"}


def config(upstream_url: str, rules: list[dict[str, str]] | None = None, **firewall: Any) -> dict[str, Any]:
    """alice's strategy has the rules (default: o1 denied, gpt-4o asked for; alias ``big`` is o1); root is
    an admin on an open strategy."""
    if rules is None:
        rules = [{"match": "openai/o1", "action": "deny"}, {"match": "openai/gpt-4o", "action": "ask"}]
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {
                "name": "openai",
                "base_url": upstream_url,
                "api_key": "sk-upstream-primary-key",
                "models": ["gpt-4o-mini", "gpt-4o", "o1"],
                "timeouts": {"first_byte": 5, "idle": 5},
            }
        ],
        "strategies": [
            {
                "name": "agents",
                "allow": ["openai/*"],
                "aliases": {"big": "openai/o1", "smart": "openai/gpt-4o"},
                "auto": ["openai/o1", "openai/gpt-4o-mini"],
                "firewall": rules,
            },
            {"name": "ops", "allow": ["openai/*"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "agents"},
            {"name": "root", "secret": ROOT_SECRET, "strategy": "ops", "admin": True},
        ],
        "firewall": {"ask_timeout": 10, "secrets": "off", **firewall},
    }
    return data


async def waiting(http: aiohttp.ClientSession, url: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    """The approvals listed, once there are ``count`` of them."""
    async with asyncio.timeout(timeout):
        while True:
            async with http.get(f"{url}/admin/api/approvals", headers=ROOT) as resp:
                assert resp.status == 200, await resp.text()
                found = (await resp.json())["approvals"]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def decide(http: aiohttp.ClientSession, url: str, approval_id: str, decision: str, **more: Any) -> int:
    body = {"decision": decision, **more}
    async with http.post(f"{url}/admin/api/approvals/{approval_id}", json=body, headers=ROOT) as resp:
        return resp.status


async def audit(gw: Any) -> list[Any]:
    from gateway.keys import OBSERVER

    usage = gw.app[OBSERVER].usage
    return await usage.audit(0, "firewall", 100)
