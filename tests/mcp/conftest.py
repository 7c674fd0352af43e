"""Upstream MCP servers for the hub's tests: the stdio fake as the gateway starts it, the HTTP fake as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import config as gwconfig
from gateway.mcp.hub import Hub
from providers.registry import TYPES
from tests import leakcheck
from tests.conftest import ALICE
from tests.procs import ROOT

TRACKER_TOKEN = "tracker-token-0123456789abcdef"
leakcheck.register(TRACKER_TOKEN)  # a header's secret: never in a log line


def stdio_server(name: str, marker: Path, **extra: Any) -> dict[str, Any]:
    """The stdio fake, as ``mcp_servers`` names it; it writes ``marker`` when a call is cancelled."""
    env = {"PYTHONPATH": str(ROOT), "FAKE_MCP_MARKER": str(marker)}
    return {"name": name, "command": [sys.executable, "-m", "tests.fakes.mcp_stdio_server"], "env": env, **extra}


def config(servers: list[dict[str, Any]], mcp: list[str] | None = None, env: dict[str, str] | None = None) -> Any:
    """A whole config, parsed as ``serve`` parses it, with these ``mcp_servers``."""
    strategy: dict[str, Any] = {"name": "default", "allow": ["*"]}
    if mcp is not None:
        strategy["mcp"] = mcp
    data = {
        "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "strategies": [strategy],
        "clients": [{"name": "alice", "secret": ALICE, "strategy": "default"}],
        "mcp_servers": servers,
    }
    return gwconfig.parse(data, {"TRACKER_TOKEN": TRACKER_TOKEN, **(env or {})}, types=TYPES)


class HttpFake:
    """``tests.fakes.mcp_http_server`` as a process on 127.0.0.1."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> HttpFake:
        port_file = Path(tempfile.mkdtemp(prefix="mcp-http-")) / "port"
        args = [*self.args, "--port", str(self.port)] if self.port else list(self.args)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.mcp_http_server", str(port_file), *args, cwd=ROOT
        )
        async with asyncio.timeout(20):
            while not port_file.exists() or not port_file.read_text():
                await asyncio.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    async def kill(self) -> None:
        """Gone at once, as a server that crashed."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


@pytest.fixture(scope="module")
def shared_tracker() -> Iterator[str]:
    """The HTTP fake's URL, one process for a whole module (tests that stop a server start their own)."""
    port_file = Path(tempfile.mkdtemp(prefix="mcp-http-")) / "port"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.mcp_http_server", str(port_file)], cwd=ROOT)
    deadline = time.monotonic() + 20
    while (not port_file.exists() or not port_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text()}/mcp"
    proc.kill()
    proc.wait()


@pytest.fixture
async def http_fake() -> AsyncIterator[Callable[..., Awaitable[HttpFake]]]:
    fakes: list[HttpFake] = []

    async def start(*args: str) -> HttpFake:
        fake = await HttpFake(*args).start()
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        await fake.kill()


@pytest.fixture
async def hubs() -> AsyncIterator[Callable[[Any], Hub]]:
    """Hubs built from configs, closed at the end of the test."""
    built: list[Hub] = []

    def build(cfg: Any) -> Hub:
        hub = Hub(cfg.mcp_servers)
        built.append(hub)
        return hub

    yield build
    await asyncio.gather(*(hub.close() for hub in built))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
