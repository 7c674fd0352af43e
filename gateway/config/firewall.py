"""The firewall's config: ``strategies[].firewall`` (rules over model ids and MCP items) and the top-level
``firewall:`` (how long a held request waits, what to do with secrets found in prompts, whom to tell)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config.reader import Reader, Secret

ACTIONS = ("allow", "ask", "deny")
SECRETS_MODES = ("block", "redact", "log", "off")


@dataclass(frozen=True)
class FirewallRule:
    """``match``: an fnmatch glob over a model id (``anthropic/claude-opus-*``) or an MCP item
    (``files__delete_*``); ``action``: allow, ask or deny."""

    match: str
    action: str
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(r"(?!)"))

    def matches(self, name: str) -> bool:
        return self.pattern.match(name) is not None


@dataclass(frozen=True)
class FirewallConfig:
    ask_timeout: float = 120.0  # seconds a held request waits for an admin's decision, then 403
    secrets: str = "log"  # block | redact | log | off
    webhook: Secret | None = None  # told of every request held; its path often holds a token: a Secret


def read_rules(r: Reader, raw: Any, path: str) -> tuple[FirewallRule, ...]:
    """``[{match: glob, action: allow|ask|deny}, ...]``, in the order written (the first match wins)."""
    rules = []
    for i, item in enumerate(r.sequence(raw, path)):
        p = f"{path}[{i}]"
        m = r.mapping(item, p, {"match": True, "action": True})
        if m is None or "match" not in m or "action" not in m:
            continue
        if not isinstance(m["match"], str):  # a number would be read as a glob matching nothing
            r.problem(f"{p}.match", "expected a string (a glob over model ids and MCP items)")
            continue
        glob, action = r.string(m["match"], f"{p}.match"), r.string(m["action"], f"{p}.action")
        if action is not None and action not in ACTIONS:
            r.problem(f"{p}.action", f"expected one of {', '.join(ACTIONS)}")
        elif glob and action:
            rules.append(FirewallRule(glob, action, re.compile(fnmatch.translate(glob))))
        elif glob == "":
            r.problem(f"{p}.match", "must not be empty")
    return tuple(rules)


def read_firewall(r: Reader, raw: Any) -> FirewallConfig:
    m = r.mapping(raw, "firewall", {"ask_timeout": False, "secrets": False, "webhook": False}) or {}
    out = FirewallConfig()
    if "ask_timeout" in m:
        timeout = r.number(m["ask_timeout"], "firewall.ask_timeout")
        out = FirewallConfig(float(timeout or out.ask_timeout), out.secrets)
    raw_secrets = m.get("secrets", out.secrets)
    # YAML reads a bare ``off`` as false
    secrets = "off" if raw_secrets is False else r.string(raw_secrets, "firewall.secrets")
    if secrets not in SECRETS_MODES:
        r.problem("firewall.secrets", f"expected one of {', '.join(SECRETS_MODES)}")
        secrets = out.secrets
    webhook = None
    if m.get("webhook") is not None:
        url = r.string(m["webhook"], "firewall.webhook")
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            r.problem("firewall.webhook", "expected an http:// or https:// URL")
        else:
            webhook = Secret(url or "")
    return FirewallConfig(out.ask_timeout, secrets or out.secrets, webhook)
