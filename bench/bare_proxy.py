"""The smallest honest aiohttp proxy: the practical limit of the gateway's stack.

One handler: read the body, forward it with one shared ClientSession, return the answer (streams are
relayed as they arrive). Same event loop (uvloop) and pool size as the gateway.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import uvloop
from aiohttp import web

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    url = request.app[UPSTREAM] + request.path
    async with request.app[SESSION].post(url, data=body, headers={"Content-Type": "application/json"}) as up:
        if up.content_type == "text/event-stream":
            out = web.StreamResponse(status=up.status, headers={"Content-Type": "text/event-stream"})
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
        return web.Response(body=await up.read(), status=up.status, content_type=up.content_type)


async def session_ctx(app: web.Application):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024)) as session:
        app[SESSION] = session
        yield


async def main(upstream: str, port: int) -> None:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"bare proxy listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args.upstream, args.port))
