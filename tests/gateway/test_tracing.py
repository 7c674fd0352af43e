"""OpenTelemetry traces, received over real OTLP/HTTP by a small receiver on 127.0.0.1 that decodes
the protobuf the exporter sends: one request span, a child span per upstream attempt, a trusted
caller's trace continued, and each attempt's traceparent sent to its upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway import config as gwconfig
from gateway import connection
from gateway.app import create_app
from providers.registry import TYPES
from tests.conftest import ALICE, ENV, bearer, standard_config
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


class Receiver:
    """An OTLP/HTTP trace endpoint: every span it is sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource in message.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    assert r.runner is not None
    await r.runner.cleanup()


async def run_gateway(data: dict[str, Any]) -> web.AppRunner:
    """A gateway on a real socket; the test stops it (its cleanup flushes the spans)."""
    cfg = gwconfig.parse({**data, "usage": {"path": None}}, ENV, types=TYPES)
    runner = connection.runner(create_app(cfg), cfg.server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def url(runner: web.AppRunner) -> str:
    return "http://127.0.0.1:%d" % runner.addresses[0][1]


def attrs(span: Span) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


async def chat(http, runner: web.AppRunner, traceparent: str) -> str:
    headers = {**bearer(ALICE), "traceparent": traceparent}
    async with http.post(url(runner) + "/v1/chat/completions", json=CHAT, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["X-Request-ID"]


async def test_a_fallback_traced_as_one_request_span_with_an_attempt_span_each(upstreams, receiver, http):
    primary, backup = upstreams
    tracing = {"otlp_endpoint": receiver.url, "protocol": "http"}
    trusting = {"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1/32"]}
    trusted = await run_gateway(standard_config(primary, backup, tracing=tracing, server=trusting))
    untrusted = await run_gateway(standard_config(primary, backup, tracing=tracing))
    primary.queue(Script(status=500))
    request_id = await chat(http, trusted, TRACEPARENT)
    other_id = await chat(http, untrusted, TRACEPARENT)
    await trusted.cleanup()  # flushes what is queued
    await untrusted.cleanup()

    by_id = {s.span_id: s for s in receiver.spans}
    requests = [s for s in receiver.spans if s.kind == Span.SPAN_KIND_SERVER]
    root = next(s for s in requests if attrs(s)["localrouter.request_id"] == request_id)
    assert root.trace_id.hex() == CALLER_TRACE and root.parent_span_id.hex() == CALLER_SPAN  # continued
    a = attrs(root)
    assert a["gen_ai.request.model"] == "openai/gpt-4o-mini" and a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["localrouter.target"] == "backup/gpt-4o-mini" and a["localrouter.client"] == "alice"
    assert a["http.response.status_code"] == 200 and a["localrouter.attempts"] == 2
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.operation.name"] == "chat" and root.name == "chat openai/gpt-4o-mini"

    children = sorted(
        (s for s in receiver.spans if s.parent_span_id == root.span_id), key=lambda s: s.start_time_unix_nano
    )
    assert [s.kind for s in children] == [Span.SPAN_KIND_CLIENT] * 2
    first, second = (attrs(s) for s in children)
    assert first["localrouter.target"] == "openai/gpt-4o-mini" and first["error.type"] == "unavailable"
    assert children[0].status.code == children[0].status.STATUS_CODE_ERROR
    assert second["localrouter.target"] == "backup/gpt-4o-mini" and "error.type" not in second
    assert (
        second["localrouter.attempt.fallback_reason"] == "unavailable" and second["localrouter.attempt.retry"] is False
    )
    assert {by_id[s.parent_span_id].span_id for s in children} == {root.span_id}

    # each upstream was sent the traceparent of its own attempt, in the caller's trace
    for fake, span in ((primary, children[0]), (backup, children[1])):
        sent = next(r.headers["traceparent"] for r in fake.received if r.path.endswith("/chat/completions"))
        assert sent == f"00-{CALLER_TRACE}-{span.span_id.hex()}-01"

    other = next(s for s in requests if attrs(s)["localrouter.request_id"] == other_id)
    assert other.trace_id.hex() != CALLER_TRACE and not other.parent_span_id  # an untrusted caller's: a new trace


async def test_no_tracing_sends_no_traceparent_upstream(upstreams, start_gateway, http):
    primary, backup = upstreams
    gw = await start_gateway(standard_config(primary, backup))
    assert gw.app  # tracing is off by default
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers={**bearer(), "traceparent": TRACEPARENT}):
        pass
    (sent,) = [r for r in primary.received if r.path.endswith("/chat/completions")]
    assert "traceparent" not in {k.lower() for k in sent.headers}


@pytest.mark.parametrize(
    ("tracing", "problem"),
    [
        ({"otlp_endpoint": "collector:4318"}, "tracing.otlp_endpoint: expected an http:// or https:// URL"),
        ({"otlp_endpoint": "http://c:4318", "protocol": "thrift"}, "tracing.protocol: expected http or grpc"),
        ({"otlp_endpoint": "http://c:4318", "sample_ratio": 2}, "tracing.sample_ratio: expected a number from 0 to 1"),
        ({"otlp_endpoint": "http://c:4318", "headers": {}}, "tracing.headers: unknown key"),
    ],
)
def test_tracing_config_is_strict(upstreams, tracing, problem):
    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse(standard_config(*upstreams, tracing=tracing), ENV, types=TYPES)
    assert problem in err.value.problems


async def test_a_grpc_exporter_starts_and_stops_with_the_app(upstreams, http):
    tracing = {"otlp_endpoint": "http://127.0.0.1:9", "protocol": "grpc"}
    runner = await run_gateway(standard_config(*upstreams, tracing=tracing))
    async with http.get(url(runner) + "/health") as resp:
        assert resp.status == 200
    await asyncio.wait_for(runner.cleanup(), 15)  # its span flushed to nowhere: bounded, not hung


async def test_a_stream_and_a_refusal_traced(upstreams, receiver, http):
    primary, backup = upstreams
    runner = await run_gateway(standard_config(primary, backup, tracing={"otlp_endpoint": receiver.url}))
    primary.queue(Script(status=503))
    async with http.post(url(runner) + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as r:
        assert r.status == 200
        await r.read()
    bad = {"model": "nobody/nothing", "messages": []}
    async with http.post(url(runner) + "/v1/chat/completions", json=bad, headers=bearer()) as r:
        assert r.status >= 400
    await runner.cleanup()
    stream, refused = sorted(
        (s for s in receiver.spans if s.kind == Span.SPAN_KIND_SERVER), key=lambda s: s.start_time_unix_nano
    )
    assert attrs(stream)["localrouter.stream"] is True and attrs(stream)["localrouter.attempts"] == 2
    attempts = [attrs(s) for s in receiver.spans if s.parent_span_id == stream.span_id]
    assert len(attempts) == 2 and all(a["localrouter.attempt.ttfb_ms"] > 0 for a in attempts)
    assert (
        attrs(refused)["http.response.status_code"] >= 400 and refused.status.code != refused.status.STATUS_CODE_ERROR
    )
    assert not [s for s in receiver.spans if s.parent_span_id == refused.span_id]  # no upstream was asked
