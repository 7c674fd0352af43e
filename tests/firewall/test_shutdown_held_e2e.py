"""SIGTERM while requests are held for an admin: the real ``serve`` process ends them at once (no admin could
answer before it is gone), each with 503 ``server_shutting_down`` in its endpoint's shape (a JSON-RPC error
for MCP), audited as ``shutdown`` by the gateway, and exits well within its shutdown timeout."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time

import openai

from tests.conftest import ALICE, ENV
from tests.firewall.conftest import waiting
from tests.firewall.test_mcp_held_e2e import Rpc, held_config
from tests.procs import start_serve, stop, write_config


async def test_sigterm_ends_held_requests_at_once_in_their_own_shape(tmp_path, http):
    data = held_config(tmp_path, [{"match": "files__crash", "action": "ask"}, {"match": "local/m", "action": "ask"}])
    data["server"] = {"shutdown_timeout": 20}
    data["firewall"]["ask_timeout"] = 15
    proc, url, _ = await start_serve("-c", str(write_config(tmp_path, data)), env=ENV)
    try:
        rpc = await Rpc(http, url).initialize()
        call = asyncio.create_task(rpc.post({"id": 5, "method": "tools/call", "params": {"name": "files__crash"}}))
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=ALICE, max_retries=0, timeout=30) as sdk:
            chat = asyncio.create_task(
                sdk.chat.completions.create(model="local/m", messages=[{"role": "user", "content": "hi"}])
            )
            await waiting(http, url, count=2)
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status, answer = await asyncio.wait_for(call, 10)
            chat_error = await asyncio.wait_for(asyncio.gather(chat, return_exceptions=True), 10)
            assert time.monotonic() - began < 10  # not the shutdown timeout, nor the ask timeout
        assert status == 503 and answer["id"] == 5
        assert answer["error"]["data"] == {"code": "server_shutting_down"}
        [error] = chat_error
        assert isinstance(error, openai.InternalServerError) and error.status_code == 503
        assert error.code == "server_shutting_down"
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        with contextlib.suppress(KeyError, ProcessLookupError):
            await stop(proc)
    with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
        rows = db.execute("SELECT subject, action, actor FROM audit WHERE kind = 'firewall'").fetchall()
    assert sorted(rows) == [("files__crash", "shutdown", "gateway"), ("local/m", "shutdown", "gateway")]
