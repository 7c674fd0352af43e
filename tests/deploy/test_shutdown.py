"""SIGTERM on the real ``serve`` process: one deadline (drain + shutdown_timeout), streams still open then
end with an error event and [DONE], records are flushed, and a drain loses no request, behind nginx
with two replicas included."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time

import aiohttp

from tests import procs
from tests.conftest import ENV, bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script
from tests.nginxserver import Nginx
from tests.procs import read_until, start_serve, stop, write_config

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ENDLESS = Script(chunks=10_000, chunk_delay=0.1)  # a stream that outlives any test


async def _plain(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        return resp.status, await resp.json()


async def test_what_runs_at_the_deadline_is_ended_in_words_and_recorded(tmp_path, upstreams):
    primary, _ = upstreams
    primary.default = ENDLESS
    drain, timeout = 1, 3
    data = standard_config(*upstreams, usage={"path": str(tmp_path / "usage.db")})
    data["server"].update(drain_seconds=drain, shutdown_timeout=timeout)
    for provider in data["providers"]:  # no upstream timeout comes first
        provider["timeouts"] = {"first_byte": 30, "idle": 30}
    proc, url, _ = await start_serve("-c", str(write_config(tmp_path, data)), env=ENV)
    out = procs.OUTPUTS[proc.pid]
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
            assert resp.status == 200
            request_id = resp.headers["X-Request-ID"]
            await resp.content.readline()  # the stream is open
            primary.queue(Script(hang=True))
            plain = asyncio.create_task(_plain(http, url))  # and a plain request waits for its upstream
            async with asyncio.timeout(10):
                while len(primary.received) < 2:
                    await asyncio.sleep(0.02)
            signalled = time.monotonic()
            stopping = asyncio.create_task(stop(proc))
            events = await asyncio.wait_for(sse_events(resp), drain + timeout + 10)  # ends cleanly, or raises
            ended = time.monotonic() - signalled
        code = await stopping
        exited = time.monotonic() - signalled
        status, doc = await plain
    assert code == 0
    assert status == 503 and doc["error"]["code"] == "server_shutting_down" and doc["error"]["type"] == "server_error"
    # one deadline, not aiohttp's two: the stream ran until drain + timeout, the process exited right after
    assert drain + timeout - 0.2 < ended < exited < drain + timeout + 1 + 1  # + 1 s slack for a loaded machine
    assert events[-1] == "[DONE]"
    error = events[-2]["error"]
    assert error["code"] == "server_shutting_down" and error["type"] == "server_error" and error["param"] is None
    assert all("choices" in e for e in events[:-2])  # chunks, then the one error event
    with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
        rows = db.execute("SELECT status, stream FROM usage WHERE id = ?", (request_id,)).fetchall()
    assert rows == [(200, 1)]
    lines = [json.loads(line) for line in out.lines if line.startswith("{")]
    assert [(line["status"], line.get("error_code")) for line in lines if line["request_id"] == request_id] == [
        (200, "server_shutting_down")
    ]


async def _post_until_refused(
    http: aiohttp.ClientSession,
    url: str,
    draining: asyncio.Event,
    answers: list[tuple[bool, int, str]],
    failures: list[BaseException],
) -> None:
    """POST again and again until a connection is refused (the listener closed). ``answers``: (sent once
    draining had begun, status, Connection header); ``failures``: anything else that went wrong."""
    while True:
        during = draining.is_set()
        try:
            async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                await resp.read()
                answers.append((during, resp.status, resp.headers.get("Connection", "")))
        except aiohttp.ClientConnectorError:
            return
        except (aiohttp.ClientError, OSError) as exc:  # a reset, a disconnect, an incomplete answer
            failures.append(exc)
            return


async def test_draining_closes_kept_alive_connections_instead_of_resetting_them(tmp_path, upstreams):
    data = standard_config(*upstreams)
    data["server"].update(drain_seconds=1.5, shutdown_timeout=2)
    proc, url, _ = await start_serve("-c", str(write_config(tmp_path, data)), env=ENV)
    draining = asyncio.Event()
    answers: list[tuple[bool, int, str]] = []
    failures: list[BaseException] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:  # kept alive
        clients = [asyncio.create_task(_post_until_refused(http, url, draining, answers, failures)) for _ in range(8)]
        await asyncio.sleep(0.5)
        stopping = asyncio.create_task(stop(proc))
        await read_until(proc, "draining")
        draining.set()
        await asyncio.wait_for(asyncio.gather(*clients), 15)
        assert await stopping == 0
    assert not failures, failures
    before = [a for a in answers if not a[0]]
    during = [a for a in answers if a[0]]
    assert before and all(status == 200 for _, status, _ in answers)
    assert len(during) >= 8 and all(connection == "close" for _, _, connection in during)


async def test_a_replica_drains_behind_nginx_without_losing_a_request(tmp_path, upstreams):
    data = standard_config(*upstreams)
    data["server"].update(drain_seconds=2, shutdown_timeout=2)
    replicas = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        replicas.append(await start_serve("-c", str(write_config(tmp_path / name, data)), env=ENV))
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", [int(url.rsplit(":", 1)[1]) for _, url, _ in replicas]).start()
    statuses: list[int] = []
    done = asyncio.Event()

    async def post(http: aiohttp.ClientSession) -> None:
        while not done.is_set():
            async with http.post(nginx.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                await resp.read()
                statuses.append(resp.status)

    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:
            clients = [asyncio.create_task(post(http)) for _ in range(8)]
            await asyncio.sleep(0.5)
            assert await stop(replicas[0][0]) == 0  # SIGTERM, and its whole drain and shutdown
            await asyncio.sleep(0.5)  # and on, with the other replica alone
            done.set()
            await asyncio.gather(*clients)
    finally:
        nginx.stop()
        for proc, _, _ in replicas:
            if proc.returncode is None:
                assert await stop(proc) == 0
    assert len(statuses) > 100
    assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
