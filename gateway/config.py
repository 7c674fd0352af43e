"""Configuration: YAML parsed once, strictly, into frozen typed objects.

Every problem is reported with its YAML path (``providers[1].base_url: not a URL``) and all of them
are collected before giving up, so an operator fixes a file in one pass. ``${VAR}`` in any string
expands from the environment given to :func:`load`; an unset variable is a problem too.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PROVIDER_TYPES = frozenset({"openai"})
ENDPOINTS = ("chat", "completions", "embeddings")
AUTO_MODEL = "localrouter/auto"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MIN_SECRET_LENGTH = 16


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every ``path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Secret:
    """A secret string that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, to the response headers, between stream chunks, for the whole answer."""

    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: Secret | None = None
    models: tuple[str, ...] | None = None
    endpoints: frozenset[str] = frozenset(ENDPOINTS)
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    allow: tuple[str, ...] = ()
    auto: tuple[str, ...] = ()
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientConfig:
    name: str
    secret_sha256: str = field(repr=False)
    strategy: str
    enabled: bool = True


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3625
    max_body_bytes: int = 16 * 1024 * 1024
    upstream_connections: int = 1024


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    strategies: tuple[StrategyConfig, ...]
    clients: tuple[ClientConfig, ...]
    source: str = "<embedded default>"
    generated_secret: Secret | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> str:
    return "lr-" + secrets.token_urlsafe(32)


# --- reading -------------------------------------------------------------------------------------


class _Reader:
    """Walks the YAML tree, collecting problems with their paths instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def mapping(self, value: Any, path: str, keys: Mapping[str, bool]) -> dict[str, Any] | None:
        """A mapping whose keys are among ``keys`` (name -> required)."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping")
            return None
        for key in value:
            if key not in keys:
                self.problem(_join(path, str(key)), "unknown key")
        for key, required in keys.items():
            if required and key not in value:
                self.problem(_join(path, key), "required")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, "expected a list")
            return []
        return value

    def string(self, value: Any, path: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(path, "expected a string")
            return None
        return self.expand(str(value), path)

    def expand(self, text: str, path: str) -> str | None:
        missing = [m.group(1) for m in _ENV_RE.finditer(text) if m.group(1) not in self.env]
        for name in missing:
            self.problem(path, f"environment variable {name} is not set")
        if missing:
            return None
        return _ENV_RE.sub(lambda m: self.env[m.group(1)], text)

    def name(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is not None and not _NAME_RE.match(text):
            self.problem(path, f"invalid name {text!r} (letters, digits, '_', '.', '-')")
            return None
        return text

    def number(self, value: Any, path: str, *, integer: bool = False, minimum: float | None = None) -> Any:
        """A number; positive unless ``minimum`` says otherwise."""
        kind = "an integer" if integer else "a number"
        if isinstance(value, str):
            try:
                value = (int if integer else float)(self.expand(value, path) or "")
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            self.problem(path, f"expected {kind}")
            return None
        if minimum is None and value <= 0:
            self.problem(path, "must be positive")
            return None
        if minimum is not None and value < minimum:
            self.problem(path, f"must be >= {minimum}")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if isinstance(value, str):
            value = {"true": True, "false": False}.get(self.expand(value, path) or "", value)
        if not isinstance(value, bool):
            self.problem(path, "expected true or false")
            return None
        return value

    def strings(self, value: Any, path: str, check: Callable[[str, str], bool] | None = None) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.sequence(value, path)):
            text = self.string(item, f"{path}[{i}]")
            if text is not None and (check is None or check(text, f"{path}[{i}]")):
                out.append(text)
        return tuple(out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _read_server(r: _Reader, raw: Any) -> ServerConfig:
    keys = {"host": False, "port": False, "max_body_bytes": False, "upstream_connections": False}
    m = r.mapping(raw, "server", keys) or {}
    d = ServerConfig()
    host = r.string(m["host"], "server.host") if "host" in m else d.host
    port = r.number(m["port"], "server.port", integer=True, minimum=0) if "port" in m else d.port
    if port is not None and port > 65535:
        r.problem("server.port", "must be <= 65535")
    body = r.number(m["max_body_bytes"], "server.max_body_bytes", integer=True, minimum=1024) if (
        "max_body_bytes" in m) else d.max_body_bytes
    conns = r.number(m["upstream_connections"], "server.upstream_connections", integer=True, minimum=1) if (
        "upstream_connections" in m) else d.upstream_connections
    return ServerConfig(host or d.host, port if port is not None else d.port,
                        body or d.max_body_bytes, conns or d.upstream_connections)


def _read_timeouts(r: _Reader, raw: Any, path: str) -> Timeouts:
    d = Timeouts()
    m = r.mapping(raw, path, {k: False for k in ("connect", "first_byte", "idle", "total")}) or {}
    values = {k: r.number(v, f"{path}.{k}") for k, v in m.items() if k in d.__dataclass_fields__}
    return Timeouts(**{k: v for k, v in values.items() if v is not None})


def _url_ok(r: _Reader, url: str, path: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        r.problem(path, "not a URL")
        return False
    return True


def _read_provider(r: _Reader, raw: Any, path: str) -> ProviderConfig | None:
    keys = {"name": True, "type": False, "base_url": True, "api_key": False, "models": False,
            "endpoints": False, "timeouts": False}
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    if name == "localrouter":
        r.problem(f"{path}.name", "'localrouter' is reserved")
    ptype = r.string(m.get("type", "openai"), f"{path}.type")
    if ptype is not None and ptype not in PROVIDER_TYPES:
        r.problem(f"{path}.type", f"unknown provider type {ptype!r} (known: {', '.join(sorted(PROVIDER_TYPES))})")
    base_url = r.string(m["base_url"], f"{path}.base_url") if "base_url" in m else None
    if base_url is not None and not _url_ok(r, base_url, f"{path}.base_url"):
        base_url = None
    api_key = r.string(m["api_key"], f"{path}.api_key") if m.get("api_key") is not None else None
    models = r.strings(m["models"], f"{path}.models") if "models" in m else None
    endpoints = frozenset(ENDPOINTS)
    if "endpoints" in m:
        def known(e: str, p: str) -> bool:
            if e not in ENDPOINTS:
                r.problem(p, f"unknown endpoint {e!r} (known: {', '.join(ENDPOINTS)})")
            return e in ENDPOINTS
        endpoints = frozenset(r.strings(m["endpoints"], f"{path}.endpoints", known))
    timeouts = _read_timeouts(r, m.get("timeouts"), f"{path}.timeouts")
    if not (name and ptype and base_url):
        return None
    return ProviderConfig(name, ptype, base_url.rstrip("/"), Secret(api_key) if api_key else None,
                          models, endpoints, timeouts)


def _check_model_ref(r: _Reader, providers: Mapping[str, ProviderConfig], model: str, path: str) -> bool:
    provider, sep, upstream = model.partition("/")
    if not sep or not provider or not upstream:
        r.problem(path, f"{model!r} is not a 'provider/model' id")
    elif provider not in providers:
        r.problem(path, f"unknown provider {provider!r} in {model!r}")
    elif providers[provider].models is not None and upstream not in providers[provider].models:
        r.problem(path, f"provider {provider!r} does not list model {upstream!r}")
    else:
        return True
    return False


def _read_strategy(
    r: _Reader, raw: Any, path: str, providers: Mapping[str, ProviderConfig]
) -> StrategyConfig | None:
    m = r.mapping(raw, path, {"name": True, "allow": False, "auto": False, "fallbacks": False})
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    allow = r.strings(m.get("allow"), f"{path}.allow")
    def ref(model: str, p: str) -> bool:
        return _check_model_ref(r, providers, model, p)

    auto = r.strings(m.get("auto"), f"{path}.auto", ref)
    fallbacks: dict[str, tuple[str, ...]] = {}
    raw_fb = m.get("fallbacks") or {}
    if not isinstance(raw_fb, dict):
        r.problem(f"{path}.fallbacks", "expected a mapping of model id to a list of model ids")
    else:
        for model, chain in raw_fb.items():
            if ref(str(model), f"{path}.fallbacks.{model}"):
                fallbacks[str(model)] = r.strings(chain, f"{path}.fallbacks.{model}", ref)
    return StrategyConfig(name, allow, auto, fallbacks) if name else None


def _read_client(
    r: _Reader, raw: Any, path: str, strategies: frozenset[str], digests: dict[str, str]
) -> ClientConfig | None:
    keys = {"name": True, "secret": False, "secret_sha256": False, "strategy": True, "enabled": False}
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    strategy = r.string(m["strategy"], f"{path}.strategy") if "strategy" in m else None
    if strategy is not None and strategy not in strategies:
        r.problem(f"{path}.strategy", f"unknown strategy {strategy!r}")
    enabled = r.boolean(m.get("enabled", True), f"{path}.enabled")
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
    if not (name and strategy and digest) or enabled is None:
        return None
    return ClientConfig(name, digest, strategy, enabled)


def _read_list(r: _Reader, raw: Any, key: str, read: Callable[[_Reader, Any, str], Any]) -> tuple[Any, ...]:
    items = [read(r, item, f"{key}[{i}]") for i, item in enumerate(r.sequence(raw, key))]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item is not None and item.name in seen:
            r.problem(f"{key}[{i}].name", f"duplicate name {item.name!r}")
        elif item is not None:
            seen.add(item.name)
    return tuple(item for item in items if item is not None)


def parse(data: Any, env: Mapping[str, str], source: str = "<config>") -> Config:
    """Turn a loaded YAML document into a :class:`Config`, or raise :class:`ConfigError`."""
    r = _Reader(env)
    top = r.mapping(data, "", {"server": False, "providers": True, "strategies": True, "clients": True})
    if top is None:
        raise ConfigError(r.problems)
    server = _read_server(r, top.get("server"))
    providers = _read_list(r, top.get("providers"), "providers", _read_provider)
    by_name = {p.name: p for p in providers}
    strategies = _read_list(r, top.get("strategies"), "strategies",
                            lambda r, raw, path: _read_strategy(r, raw, path, by_name))
    names, digests = frozenset(s.name for s in strategies), {}
    clients = _read_list(r, top.get("clients"), "clients",
                         lambda r, raw, path: _read_client(r, raw, path, names, digests))
    cfg = Config(server, providers, strategies, clients, source)
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and parse a YAML file."""
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    return parse(data, env, str(path))


def default(env: Mapping[str, str] | None = None) -> Config:
    """The embedded default: local Ollama, OpenAI when OPENAI_API_KEY is set, one open client."""
    env = os.environ if env is None else env
    providers = [ProviderConfig("ollama", "openai", "http://127.0.0.1:11434/v1")]
    if env.get("OPENAI_API_KEY"):
        providers.append(ProviderConfig("openai", "openai", "https://api.openai.com/v1",
                                        Secret(env["OPENAI_API_KEY"])))
    secret = env.get("LOCALROUTER_SECRET")
    generated = None
    if not secret:
        secret = generate_secret()
        generated = Secret(secret)
    client = ClientConfig("default", hash_secret(secret), "default")
    return Config(ServerConfig(), tuple(providers), (StrategyConfig("default", ("*",)),),
                  (client,), generated_secret=generated)


def resolve(path: str | None, env: Mapping[str, str] | None = None) -> Config:
    """The config ``serve`` runs: the given file, else ./localrouter.yaml, else the default."""
    if path is not None:
        return load(path, env)
    if Path("localrouter.yaml").is_file():
        return load("localrouter.yaml", env)
    return default(env)
