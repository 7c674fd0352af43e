"""What is refused before the app runs (malformed HTTP, oversized lines, too many headers) and requests
that arrive too slowly: OpenAI-shaped answers with the usual headers, over the real ``serve`` process
and raw sockets, and never a byte of a refused header in the process's output."""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import urlsplit

import orjson

from gateway.config import ConfigError, parse
from providers.registry import TYPES
from tests import leakcheck
from tests.conftest import ALICE, ENV, standard_config
from tests.procs import OUTPUTS, start_serve, stop, write_config

SECRET = "lr-wire-secret-do-not-log-0123456789"
leakcheck.register(SECRET)


def _request(head: str, *headers: str, body: bytes = b"") -> bytes:
    return ("\r\n".join((head, "Host: 127.0.0.1", *headers)) + "\r\n\r\n").encode("latin-1") + body


CHAT = orjson.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})

# name: (raw request, expected status, expected code)
REFUSED = {
    "oversized Authorization header": (
        _request("GET /v1/models HTTP/1.1", "Authorization: Bearer " + SECRET + "x" * 9000),
        400,
        "line_too_long",
    ),
    "oversized URL": (_request("GET /v1/models?q=" + "a" * 9000 + " HTTP/1.1"), 400, "line_too_long"),
    "too many headers": (
        _request("GET /v1/models HTTP/1.1", *(f"X-H{i}: v" for i in range(200))),
        400,
        "malformed_request",
    ),
    "NUL in a header value": (
        _request("GET /v1/models HTTP/1.1", f"Authorization: Bearer {SECRET}\x00"),
        400,
        "malformed_request",
    ),
    "Content-Length not a number": (
        _request("POST /v1/chat/completions HTTP/1.1", f"Authorization: Bearer {SECRET}", "Content-Length: 1x"),
        400,
        "malformed_request",
    ),
    "garbage request line": (f"HELLO {SECRET}\r\n\r\n".encode(), 400, "invalid_request_line"),
    "invalid chunk size": (
        _request(
            "POST /v1/chat/completions HTTP/1.1",
            f"Authorization: Bearer {ALICE}",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
            body=b"zz\r\n" + SECRET.encode(),
        ),
        400,
        "malformed_request",
    ),
}


class Answer:
    def __init__(self, raw: bytes, closed: bool) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/1.") else 0
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.closed = closed
        self.raw = raw

    def error(self) -> dict:
        """The error object, after checking the answer is the gateway's OpenAI-shaped error with its headers."""
        assert self.headers.get("content-type", "").startswith("application/json"), self.raw[:300]
        assert self.headers.get("x-content-type-options") == "nosniff", self.raw[:300]
        assert "no-store" in self.headers.get("cache-control", ""), self.raw[:300]
        request_id = self.headers.get("x-request-id", "")
        assert re.fullmatch(r"req_[0-9a-f]+", request_id), self.raw[:300]
        length = int(self.headers["content-length"])
        error = orjson.loads(self.body[:length])["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["message"].endswith(f"(request id: {request_id})")
        return error


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _read_answer(reader: asyncio.StreamReader, timeout: float = 10.0) -> Answer:
    """Everything until the server closes the connection (or ``timeout``: then ``closed`` is False)."""
    raw = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                raw += chunk
    except TimeoutError:
        return Answer(raw, closed=False)
    except ConnectionResetError:
        pass
    return Answer(raw, closed=True)


async def _send(url: str, raw: bytes) -> Answer:
    reader, writer = await _open(url)
    try:
        writer.write(raw)
        await writer.drain()
        return await _read_answer(reader)
    finally:
        writer.close()


async def _serve(tmp_path, upstreams, **server):
    data = standard_config(*upstreams)
    data["server"].update(server)
    return await start_serve("-c", str(write_config(tmp_path, data)), env={"ALICE_SECRET": ALICE})


async def test_refusals_before_the_app_are_openai_errors_and_log_no_header(tmp_path, upstreams):
    proc, url, _ = await _serve(tmp_path, upstreams)
    try:
        for name, (raw, status, code) in REFUSED.items():
            answer = await _send(url, raw)
            assert answer.status == status, (name, answer.raw[:300])
            assert answer.error()["code"] == code, name
            assert SECRET not in answer.raw.decode("latin-1"), name
            assert answer.closed, name
        output = OUTPUTS[proc.pid].path.read_bytes()
    finally:
        assert await stop(proc) == 0
    assert SECRET.encode() not in output
    assert b"Traceback" not in output


async def test_a_body_that_breaks_its_framing_is_a_400_not_a_hang(tmp_path, upstreams):
    proc, url, _ = await _serve(tmp_path, upstreams)
    try:
        for name, headers, body in [
            ("invalid chunk size", ["Transfer-Encoding: chunked"], b"zz\r\n" + SECRET.encode()),
            ("gzip that is not", ["Content-Encoding: gzip", "Content-Length: 40"], SECRET.encode().ljust(40)),
        ]:
            reader, writer = await _open(url)
            writer.write(
                _request(
                    "POST /v1/chat/completions HTTP/1.1",
                    f"Authorization: Bearer {ALICE}",
                    "Content-Type: application/json",
                    *headers,
                )
            )
            await writer.drain()
            await asyncio.sleep(0.3)  # the app is reading the body when its framing breaks
            writer.write(body)
            answer = await _read_answer(reader)
            writer.close()
            assert answer.status == 400, (name, answer.raw[:300])
            assert answer.error()["code"] == "invalid_body_framing", name
            assert answer.closed, name
        output = OUTPUTS[proc.pid].path.read_bytes()
    finally:
        assert await stop(proc) == 0
    assert SECRET.encode() not in output
    assert b"Traceback" not in output


async def test_partial_headers_time_out_with_408(tmp_path, upstreams):
    proc, url, _ = await _serve(tmp_path, upstreams, header_timeout=1, body_timeout=1)
    try:
        reader, writer = await _open(url)
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
        started = time.monotonic()
        answer = await _read_answer(reader, timeout=15)
        writer.close()
        assert answer.closed and time.monotonic() - started < 10
        assert answer.status == 408, answer.raw[:300]
        assert answer.error()["code"] == "request_timeout"
    finally:
        assert await stop(proc) == 0


async def test_a_connection_that_sends_nothing_is_closed(tmp_path, upstreams):
    proc, url, _ = await _serve(tmp_path, upstreams, header_timeout=1)
    try:
        reader, writer = await _open(url)
        answer = await _read_answer(reader, timeout=15)
        writer.close()
        assert answer.closed and answer.raw == b""
    finally:
        assert await stop(proc) == 0


async def test_a_slow_body_times_out_with_408(tmp_path, upstreams):
    proc, url, _ = await _serve(tmp_path, upstreams, header_timeout=1, body_timeout=1)
    try:
        reader, writer = await _open(url)
        writer.write(
            _request(
                "POST /v1/chat/completions HTTP/1.1",
                f"Authorization: Bearer {ALICE}",
                "Content-Type: application/json",
                "Content-Length: 100",
                body=b"{",
            )
        )
        started = time.monotonic()
        answer = await _read_answer(reader, timeout=15)
        writer.close()
        assert answer.closed and time.monotonic() - started < 10
        assert answer.status == 408, answer.raw[:300]
        assert answer.headers.get("connection", "").lower() == "close"
        assert answer.error()["code"] == "request_timeout"
    finally:
        assert await stop(proc) == 0


async def test_an_idle_keepalive_connection_outlives_the_header_timeout(tmp_path, upstreams):
    """Idleness between requests is the keep-alive timeout's business (a proxy's pooled connection must not
    be closed under it); the header timeout starts at a request's first byte."""
    proc, url, _ = await _serve(tmp_path, upstreams, header_timeout=1, body_timeout=1)
    try:
        reader, writer = await _open(url)
        for _ in range(2):
            writer.write(
                _request(
                    "POST /v1/chat/completions HTTP/1.1",
                    f"Authorization: Bearer {ALICE}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(CHAT)}",
                    body=CHAT,
                )
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            await reader.readexactly(length)
            await asyncio.sleep(2.5)
        writer.close()
    finally:
        assert await stop(proc) == 0


def test_the_timeouts_are_positive_seconds():
    data = {"providers": [], "strategies": [], "clients": [], "server": {"header_timeout": 0, "body_timeout": "soon"}}
    try:
        parse(data, ENV, types=TYPES)
    except ConfigError as exc:
        assert "server.header_timeout: must be positive" in exc.problems
        assert "server.body_timeout: expected a number" in exc.problems
    else:
        raise AssertionError("accepted")
    assert parse({**data, "server": {"header_timeout": 2.5}}, ENV, types=TYPES).server.header_timeout == 2.5
