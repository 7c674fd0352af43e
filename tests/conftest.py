"""Fixtures: fake upstreams and gateways on real loopback sockets, and clients that talk to them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from openai import AsyncOpenAI

from gateway import config as gwconfig
from gateway import connection
from gateway.app import create_app
from providers.registry import TYPES
from tests import leakcheck
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import WireFake
from tests.pgserver import PASSWORD, PostgresServer

ALICE = "lr-alice-secret-0123456789abcdef"
BOB = "lr-bob-secret-0123456789abcdefgh"
CAROL = "lr-carol-secret-0123456789abcdef"  # disabled
ENV = {"ALICE_SECRET": ALICE}
leakcheck.register(ALICE, BOB, CAROL)


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(leakcheck.Collector())
    logging.getLogger("localrouter").setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = leakcheck.leaks()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"SECRET LEAK: {len(found)} log line(s) of this run hold a secret:", red=True)
        for line in found[:20]:
            reporter.write_line("  " + line)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL cluster for the session (each test empties its database: ``pg_url``)."""
    server = PostgresServer().init().start().create_database()
    leakcheck.register(PASSWORD)  # never in a log line
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """The session's database, emptied: no table, no schema version."""

    async def empty() -> None:
        conn = await asyncpg.connect(pg_server.url)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever runs in this one
        pool.submit(asyncio.run, empty()).result()
    return pg_server.url


class Gateway:
    access: AccessLines

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    def sdk(self, key: str = ALICE, prefix: str = "/v1") -> AsyncOpenAI:
        return AsyncOpenAI(base_url=self.url + prefix, api_key=key, max_retries=0, timeout=20)


def standard_config(primary: FakeOpenAI, backup: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    """Two providers, three strategies, three clients: the shape most tests need."""
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {
                "name": "openai",
                "type": "openai",
                "base_url": primary.base_url,
                "api_key": "sk-upstream-primary-key",
                "models": ["gpt-4o-mini", "text-embedding-3-small"],
                "timeouts": {"first_byte": 2, "idle": 2},
            },
            {
                "name": "backup",
                "base_url": backup.base_url,
                "api_key": "sk-upstream-backup-key",
                "endpoints": ["chat", "embeddings"],
                "timeouts": {"first_byte": 2, "idle": 2},
            },
        ],
        "strategies": [
            {
                "name": "default",
                "allow": ["openai/*", "backup/*"],
                "auto": ["openai/gpt-4o-mini", "backup/gpt-4o-mini"],
                "fallbacks": {"openai/gpt-4o-mini": ["backup/gpt-4o-mini"]},
            },
            {"name": "narrow", "allow": ["backup/gpt-4o-mini"]},
        ],
        "clients": [
            {"name": "alice", "secret": "${ALICE_SECRET}", "strategy": "default"},
            {"name": "bob", "secret_sha256": gwconfig.hash_secret(BOB), "strategy": "narrow"},
            {"name": "carol", "secret": CAROL, "strategy": "default", "enabled": False},
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture
async def fake_upstream() -> AsyncIterator[Callable[..., Awaitable[FakeOpenAI]]]:
    started: list[FakeOpenAI] = []

    async def start(name: str = "fake", **kwargs: Any) -> FakeOpenAI:
        fake = await FakeOpenAI(name, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


@pytest.fixture
async def wire_fake() -> AsyncIterator[Callable[..., Awaitable[WireFake]]]:
    """A fake upstream of any wire format (tests/fakes/wire.py), stopped after the test."""
    started: list[WireFake] = []

    async def start(kind: str, name: str = "up") -> WireFake:
        fake = await WireFake(kind, name).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()


class AccessLines(io.RawIOBase):
    """Where a test gateway's access log goes: parsed lines kept for the test, and seen by the leak check."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        for raw in bytes(data).decode().splitlines():
            leakcheck.LINES.append(raw)
            self.lines.append(json.loads(raw))
        return len(data)


@pytest.fixture
async def start_gateway(tmp_path_factory) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[Gateway]]]:
    runners: list[web.AppRunner] = []

    async def start(data: dict[str, Any] | Path, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Gateway:
        """A gateway on ``data`` (a config dict, or the path of a config file it reloads from); usage records
        go to a temporary directory unless the config says where."""
        env = ENV if env is None else env
        if isinstance(data, dict) and "usage" not in data:
            data = {**data, "usage": {"path": str(tmp_path_factory.mktemp("usage") / "usage.db")}}
        cfg = (
            gwconfig.load(data, env, types=TYPES) if isinstance(data, Path) else gwconfig.parse(data, env, types=TYPES)
        )
        access = AccessLines()
        runner = connection.runner(create_app(cfg, access), cfg.server)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, host, 0).start()
        gw = Gateway(runner)
        gw.access = access
        return gw

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def upstreams(fake_upstream: Callable[..., Awaitable[FakeOpenAI]]) -> tuple[FakeOpenAI, FakeOpenAI]:
    return await fake_upstream("primary"), await fake_upstream("backup")


@pytest.fixture
async def gw(upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await start_gateway(standard_config(*upstreams))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bearer(key: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def sse_events(resp: aiohttp.ClientResponse) -> list[Any]:
    """Every ``data:`` payload of an SSE answer, JSON-decoded except ``[DONE]``."""
    import json

    out: list[Any] = []
    async for line in resp.content:
        text = line.decode().strip()
        if text.startswith("data: "):
            payload = text[6:]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
