"""The response cache, for the requests of a strategy that has one (the gate calls :func:`serve` for those
alone, once the body is read and the model's chain resolved; any other request costs one attribute check).

A request the cache may answer (gateway.cache.request) is looked up by its key: a hit is answered from
the entry, as the first client got it, with no upstream call; a miss goes to the handler, and its answer
is kept when it is whole: a 200 that no error ended (a stream's last event went out after its upstream's
clean end, recorded by the relay, gateway.api.events). ``Cache-Control: no-cache`` (or ``max-age=0``,
or without a ``Cache-Control`` ``Pragma: no-cache``) skips the lookup but keeps the fresh answer (RFC 9111:
the client wants the origin's answer, not the cache's); ``no-store`` does neither. Every answer of such a
strategy says ``x-localrouter-cache: hit`` or ``miss`` (middlewares.security sets it from the exchange).

A hit is accounted as served by the entry's target with the entry's usage (tokens shown), cost 0 and the
cost it saved; it counted as a request against the client's rate limits (before the body was read) and
counts no tokens there.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import istr

from gateway import cache, jsonx
from gateway.keys import BODY, CACHE_RECORDING, CHAIN, EXCHANGE, LIVE, OBSERVER, PRINCIPAL, ROUTE
from gateway.observability.exchange import Exchange
from gateway.observability.metrics import CACHE_LOOKUPS
from gateway.routing.router import Target

#: the headers of an answer kept with it: what it is, and who served it (gateway.api.answers.served_headers)
_KEPT = (
    hdrs.CONTENT_TYPE,
    hdrs.CACHE_CONTROL,
    istr("X-Accel-Buffering"),
    istr("x-localrouter-provider"),
    istr("x-localrouter-model"),
)
_ATTEMPTS = istr("x-localrouter-attempts")


async def serve(request: web.Request, handler: Handler, ttl: int) -> web.StreamResponse:
    """The answer to an inference request of a strategy whose entries last ``ttl`` seconds."""
    endpoint, body = request[ROUTE].endpoint, request[BODY]
    if endpoint not in cache.CACHED_ENDPOINTS:
        return await handler(request)
    x = request[EXCHANGE]
    x.cache = "miss"
    control = cache.directives(request.headers.get(hdrs.CACHE_CONTROL), request.headers.get(hdrs.PRAGMA))
    if control.no_store or not cache.cacheable(endpoint, body):
        _count(request, "miss")
        return await handler(request)
    store = request.app[LIVE].cache
    # as a set: a pool orders its targets anew for each request, and any of them answers the same request
    chain = tuple(sorted({t.id for t in request[CHAIN]}))
    key = cache.fingerprint(request[PRINCIPAL].policy.name, endpoint, chain, body, request.headers)
    entry = None if control.no_cache else await store.get(key)
    _count(request, "miss" if entry is None else "hit")
    if entry is not None:
        return await _replay(request, x, entry)
    recording = None
    if body.get("stream") is True:
        recording = request[CACHE_RECORDING] = cache.Recording()
    response = await handler(request)
    kept = _entry(response, x, recording)
    if kept is not None:
        await store.put(key, kept, ttl)
    return response


def _count(request: web.Request, result: str) -> None:
    metrics = request.app[OBSERVER].metrics
    if metrics is not None:
        metrics.cell(CACHE_LOOKUPS, result)[0] += 1


def _entry(response: web.StreamResponse, x: Exchange, recording: cache.Recording | None) -> cache.Entry | None:
    """What to keep of a miss's answer; None when it is not whole (failed, refused, cut, or left by its client)."""
    if response.status != 200 or x.error_code is not None or x.target is None:
        return None
    if recording is not None:
        if not recording.complete:
            return None
        data = recording.body()
    elif isinstance(response, web.Response) and isinstance(response.body, bytes):
        data = response.body
    else:
        return None
    headers = {str(name): response.headers[name] for name in _KEPT if name in response.headers}
    target = (x.target.id, x.target.provider, x.target.model)
    return cache.Entry(recording is not None, data, headers, target, x.usage, x.cost_usd)


async def _replay(request: web.Request, x: Exchange, entry: cache.Entry) -> web.StreamResponse:
    """The entry as the first client got it: the same body, or the same events in one write."""
    x.cache, x.stream, x.attempts = "hit", entry.stream, 0
    x.target = Target(*entry.target)
    x.usage, x.cost_usd, x.saved_usd = entry.usage, 0.0, entry.cost_usd
    headers = {**entry.headers, _ATTEMPTS: "0"}
    if not entry.stream:
        if request.app[OBSERVER].bodies:
            x.response_body = jsonx.loads(entry.body)
        return web.Response(body=entry.body, headers=headers)
    response = web.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        x.ttfb = x.since_start()
        await response.write_eof(entry.body)
    except ConnectionError:
        pass  # the client went away: nothing more to send
    return response
