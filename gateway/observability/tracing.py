"""OpenTelemetry traces: one span per request, a child span per upstream attempt or MCP call, sent over OTLP.

The tracer provider is this app's own (never the process-wide one: importing or building an app sets
nothing global), created as the app starts and shut down, its last spans flushed, as it stops. Spans
go out in batches from the SDK's own thread, so exporting never waits in a request. With tracing off
there is no ``Tracing`` at all and a request pays one None check per layer.

A ``traceparent`` is continued only from a trusted peer (``server.trusted_proxies``), like
``X-Request-ID``; from anyone else a new trace starts. Each attempt's own ``traceparent`` goes to its
upstream (``providers.transport.tracecontext``). Attribute names follow OpenTelemetry's GenAI and HTTP
semantic conventions where they have one; the gateway's own are under ``localrouter.``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.config import TracingConfig
from providers.base import Provider, ProviderError, UpstreamRejected
from providers.transport.tracecontext import TRACEPARENT

if TYPE_CHECKING:  # types only: routing hands its attempts to the tracing, not the other way round
    from gateway.observability.exchange import Exchange
    from gateway.routing.router import Target

T = TypeVar("T")

#: the GenAI conventions' operation for each inference endpoint the gateway serves
OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
#: seconds an export may take, retries included: a collector that is down must not hold up the gateway's
#: shutdown (its last spans are flushed then) for longer
EXPORT_TIMEOUT = 2.0


def exporter(config: TracingConfig) -> SpanExporter:
    """The OTLP exporter for ``config.protocol``; the gRPC one is imported only when asked for."""
    assert config.otlp_endpoint is not None
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        url = urlsplit(config.otlp_endpoint)
        return GrpcExporter(endpoint=url.netloc, insecure=url.scheme == "http", timeout=EXPORT_TIMEOUT)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = config.otlp_endpoint
    if urlsplit(endpoint).path in ("", "/"):  # a collector's base address: the traces' own path below it
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT)


class Tracing:
    """This app's tracer; ``close`` flushes what is still queued."""

    def __init__(self, config: TracingConfig) -> None:
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            resource=Resource({"service.name": config.service_name}),  # not .create: it reads OTEL_* variables
            shutdown_on_exit=False,  # no atexit hook: the app's cleanup shuts it down
        )
        batches = BatchSpanProcessor(exporter(config), export_timeout_millis=EXPORT_TIMEOUT * 1000)
        self.provider.add_span_processor(batches)
        self.tracer = self.provider.get_tracer("localrouter")
        self.propagator = TraceContextTextMapPropagator()

    def begin(self, request: web.Request, x: Exchange, trusted_peer: bool) -> None:
        """The request's span, a trusted caller's trace continued."""
        parent = None
        if trusted_peer and "traceparent" in request.headers:
            parent = self.propagator.extract({k.lower(): v for k, v in request.headers.items()})
        x.tracing = self
        x.span = self.tracer.start_span(
            f"{request.method} {x.endpoint}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"localrouter.request_id": x.id, "http.request.method": request.method, "url.path": x.path},
        )

    def end(self, x: Exchange) -> None:
        """Everything the request came to, on its span, and the span ended."""
        span = x.span
        assert span is not None
        if x.model_requested:
            span.update_name(f"{OPERATIONS.get(x.endpoint, x.endpoint)} {x.model_requested}")
        span.set_attributes(request_attributes(x))
        # a client's mistake (4xx) is no server error; a stream that failed after its 200 is one
        if x.status >= 500 or (x.status < 400 and x.error_code is not None):
            span.set_status(Status(StatusCode.ERROR, x.error_code))
        span.end()

    def attempts(self, x: Exchange, call: Callable[[Provider, Target], Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """``call`` with a child span of the request's around each upstream attempt."""

        async def traced(provider: Provider, target: Target) -> T:
            assert x.span is not None
            span = self.tracer.start_span(
                f"attempt {target.id}",
                context=trace.set_span_in_context(x.span),
                kind=SpanKind.CLIENT,
                attributes=attempt_attributes(x, provider, target),
            )
            carrier: dict[str, str] = {}
            self.propagator.inject(carrier, context=trace.set_span_in_context(span))
            token = TRACEPARENT.set(carrier.get("traceparent"))
            began = time.perf_counter()
            try:
                result = await call(provider, target)
            except BaseException as exc:
                failed(span, exc)
                raise
            finally:
                TRACEPARENT.reset(token)
                if x.stream:  # the attempt ends at the stream's first batch; a whole answer's is its duration
                    span.set_attribute("localrouter.attempt.ttfb_ms", round((time.perf_counter() - began) * 1000, 3))
                span.end()
            return result

        return traced

    def mcp_call(self, x: Exchange, method: str, server: str | None, item: str) -> Span:
        """A child span of the request's for one MCP call to an upstream item; :func:`mcp_done` ends it."""
        assert x.span is not None
        attributes = {"mcp.method.name": method, "localrouter.mcp.item": item}
        if server is not None:
            attributes["localrouter.mcp.server"] = server
        return self.tracer.start_span(
            f"{method} {item}", context=trace.set_span_in_context(x.span), kind=SpanKind.CLIENT, attributes=attributes
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)  # blocks while it exports what is queued


def attempt_attributes(x: Exchange, provider: Provider, target: Target) -> dict[str, Any]:
    """Who is asked, and why: the previous failure (its kind) names the reason for a retry or fallback."""
    attributes: dict[str, Any] = {
        "localrouter.provider": target.provider,
        "localrouter.target": target.id,
        "gen_ai.provider.name": provider.config.type,
        "gen_ai.request.model": target.model,
        "localrouter.attempt": x.attempts,
    }
    last = x.failures[-1] if x.failures else None
    retry = last is not None and last[0] == target.id
    attributes["localrouter.attempt.retry"] = retry
    if last is not None:
        attributes["localrouter.attempt.retry_reason" if retry else "localrouter.attempt.fallback_reason"] = last[2]
    return attributes


def mcp_done(span: Span, status: str, began: float) -> None:
    """``status``: the call's word (gateway.mcp.inbound.call_status); a tool's own error is the tool's
    answer, not a failed call."""
    span.set_attribute("localrouter.mcp.status", status)
    span.set_attribute("localrouter.mcp.duration_ms", round((time.perf_counter() - began) * 1000, 3))
    if status not in ("ok", "tool_error"):
        span.set_attribute("error.type", status)
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def failed(span: Span, exc: BaseException) -> None:
    if isinstance(exc, UpstreamRejected):
        span.set_attribute("http.response.status_code", exc.status)
        span.set_attribute("error.type", str(exc.status))
    elif isinstance(exc, ProviderError):
        span.set_attribute("error.type", exc.kind)
        span.set_attribute("localrouter.attempt.error", exc.reason)
    else:
        span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR))


def request_attributes(x: Exchange) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.response.status_code": x.status,
        "localrouter.endpoint": x.endpoint,
        "localrouter.attempts": x.attempts,
        "localrouter.stream": x.stream,
    }
    optional = {
        "localrouter.client": x.client,
        "gen_ai.operation.name": OPERATIONS.get(x.endpoint) if x.inference else None,
        "gen_ai.request.model": x.model_requested,
        "gen_ai.response.model": x.target.model if x.target else None,
        "localrouter.target": x.target.id if x.target else None,
        "localrouter.provider": x.target.provider if x.target else None,
        "gen_ai.usage.input_tokens": _tokens(x.usage, "prompt_tokens"),
        "gen_ai.usage.output_tokens": _tokens(x.usage, "completion_tokens"),
        "localrouter.cost_usd": x.cost_usd,
        "localrouter.ttfb_ms": round(x.ttfb * 1000, 3) if x.ttfb is not None else None,
        "error.type": x.error_code,
    }
    attributes.update((k, v) for k, v in optional.items() if v is not None)
    return attributes


def _tokens(usage: dict[str, Any] | None, key: str) -> int | None:
    value = (usage or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
