"""An outside review of the hardening of issue 15, round two: cases the fixes' own tests did not cover."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import bearer
from tests.fakes.openai_upstream import Script
from tests.fakes.wire import KEY

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
