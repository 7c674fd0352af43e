"""An outside review of the hardening of issue 15, round two: cases the fixes' own tests did not cover."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import ALICE, ENV, bearer, standard_config
from tests.fakes.openai_upstream import Script
from tests.fakes.wire import KEY


async def raw_status(url: str, request: bytes) -> bytes:
    """The status line of the answer to ``request`` sent as these very bytes (no client library's checks)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        return (await asyncio.wait_for(reader.readline(), 10)).strip()
    finally:
        writer.close()


CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_400_echoing_its_key_in_param_or_code_is_scrubbed(gw, http, upstreams, stream):
    """Item 5: an upstream's 400 goes back with its param and code; the key may be echoed in those too."""
    echo = {"message": "bad header", "type": "invalid_request_error", "param": f"Bearer {KEY}", "code": f"k {KEY}"}
    upstreams[0].queue(Script(status=400, body={"error": echo}))
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=bearer()) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == "Bearer [redacted]" and error["code"] == "k [redacted]"
    await asyncio.sleep(0.4)  # the access log's batch is written
    assert KEY not in json.dumps(gw.access.lines)


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2003", "\u0085"], ids=["nbsp", "ideographic", "em", "nel"])
async def test_unicode_spaces_around_a_token_or_secret_are_not_another_spelling(gw, http, space):
    """Item 9: one token, one accepted spelling; Unicode spaces are no HTTP whitespace to strip."""
    async with http.post(
        gw.url + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "alice", "client_secret": ALICE},
    ) as resp:
        token = (await resp.json())["access_token"]
    for header, value in [
        ("Authorization", f"Bearer {token}"),
        ("Authorization", f"Bearer {ALICE}"),
        ("x-api-key", ALICE),
    ]:
        head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}: ".encode()
        assert await raw_status(gw.url, head + value.encode() + b"\r\n\r\n") == b"HTTP/1.1 200 OK"
        for spelling in (value + space, value.replace(" ", " " + space) if " " in value else space + value):
            status = await raw_status(gw.url, head + spelling.encode() + b"\r\n\r\n")
            assert status == b"HTTP/1.1 401 Unauthorized", (header, spelling)


def event(doc: dict) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def chunk(choices: list, **extra: object) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices, **extra}


def delta(content: dict, finish: str | None = None) -> list:
    return [{"index": 0, "delta": content, "finish_reason": finish}]


# Azure OpenAI opens every chat stream with a chunk of no choices that carries its prompt filter's results
AZURE_STREAM = [
    event(chunk([], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}])),
    event(chunk(delta({"role": "assistant", "content": ""}))),
    event(chunk(delta({"content": "hi"}))),
    event(chunk(delta({}, "stop"))),
    event(chunk([], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})),
    b"data: [DONE]\n\n",
]


@pytest.mark.parametrize("options", [None, {"include_usage": False}])
async def test_the_tutorial_loop_survives_a_chunk_without_choices_from_the_upstream(gw, upstreams, options):
    """Item 10: without include_usage no chunk has empty choices, whatever the upstream opens with."""
    upstreams[0].queue(Script(raw_stream=AZURE_STREAM))
    extra = {} if options is None else {"stream_options": options}
    async with gw.sdk() as sdk:
        stream = await sdk.chat.completions.create(**CHAT, stream=True, **extra)
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hi"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens == 2


def _workers_of(proc) -> list[int]:
    return [int(pid) for pid in re.findall(r"\(worker (\d+)\)", "".join(procs.OUTPUTS[proc.pid].lines))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _exits(proc, timeout: float) -> int | None:
    """The supervisor's exit code if it exits within ``timeout``; else None, and it and its workers are killed."""
    try:
        async with asyncio.timeout(timeout):
            return await proc.wait()
    except TimeoutError:
        for pid in [proc.pid, *_workers_of(proc)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await proc.wait()
        return None


async def _supervisor(tmp_path, upstreams):
    data = standard_config(*upstreams, usage={"path": None})
    data["server"].update(drain_seconds=0, shutdown_timeout=1)
    path = procs.write_config(tmp_path, data)
    return await procs.start_serve("-c", str(path), "--workers", "2", "--allow-per-process-limits", env=ENV)


async def test_sigterm_while_a_dead_worker_is_restarted_stops_the_supervisor(tmp_path, upstreams):
    """Item 3: a SIGTERM that came while a worker was being replaced left the new worker running (it was
    started after the stop, which it never heard of) and the supervisor waiting for it for ever."""
    proc, _, _ = await _supervisor(tmp_path, upstreams)
    os.kill(_workers_of(proc)[0], signal.SIGKILL)
    await procs.read_until(proc, "restarting it")
    proc.send_signal(signal.SIGTERM)  # within the restart's backoff
    code = await _exits(proc, 15)
    assert code is not None, "the supervisor did not exit"
    assert not any(_alive(pid) for pid in _workers_of(proc))
    procs.OUTPUTS.pop(proc.pid)


async def test_sigterm_while_the_workers_start_stops_the_supervisor(tmp_path, upstreams):
    """Item 3: a SIGTERM before the last worker was up stopped only those already started."""
    data = standard_config(*upstreams, usage={"path": None})
    data["server"].update(drain_seconds=0, shutdown_timeout=1)
    path = procs.write_config(tmp_path, data)
    log = Path(tempfile.mkdtemp(prefix="localrouter-out-")) / "output.log"
    with open(log, "wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "serve", "--port", "0", "-c", str(path)),
            *("--workers", "2", "--allow-per-process-limits"),
            env={**os.environ, "PYTHONPATH": str(procs.ROOT), **ENV},
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    procs.OUTPUTS[proc.pid] = procs.Output(log)
    await procs.read_until(proc, "(worker ", timeout=20)  # the first one is up, the second is starting
    proc.send_signal(signal.SIGTERM)
    code = await _exits(proc, 15)
    assert code is not None, "the supervisor did not exit"
    assert not any(_alive(pid) for pid in _workers_of(proc))
    procs.OUTPUTS.pop(proc.pid)


@pytest.mark.parametrize("models", [["gpt-4o-mini"], None], ids=["listed", "discovered"])
def test_check_config_prints_no_credential_put_in_a_base_url(tmp_path, upstreams, models):
    """Item 18: check-config prints each provider's URL; `serve` already left out its credentials, but
    check-config printed a user:password@ or a ?key= as written."""
    data = standard_config(*upstreams)
    provider = data["providers"][1]
    provider["base_url"] = "http://proxyuser:pw-in-the-url-0123@127.0.0.1:9/v1?key=key-in-the-query-0123"
    if models is None:
        provider.pop("models", None)
    else:
        provider["models"] = models
    out = procs.run("check-config", "-c", str(procs.write_config(tmp_path, data)), env=ENV)
    assert out.returncode == 0, out.stderr
    assert "http://127.0.0.1:9/v1" in out.stdout
    assert "pw-in-the-url" not in out.stdout + out.stderr and "key-in-the-query" not in out.stdout + out.stderr


def test_usage_on_a_file_that_is_no_database_is_one_line_and_exit_2(tmp_path):
    """Items 17-18: the CLI says what is wrong in one line; `usage --db` on another file gave a traceback."""
    path = tmp_path / "localrouter.yaml"
    path.write_text("server: {port: 3625}\n")
    out = procs.run("usage", "--db", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"error: {path} holds no usage records (file is not a database)"]
    assert path.read_text() == "server: {port: 3625}\n"
