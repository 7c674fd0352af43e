"""Schemathesis against the gateway's own /openapi.json: generated valid and invalid requests alike
get no 5xx, and every answer (the rejections included) matches what the document says."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import orjson
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway import config as gwconfig
from gateway.app import create_app
from gateway.keys import OPENAPI
from providers.registry import TYPES
from tests.conftest import ALICE
from tests.fakes.openai_upstream import FakeOpenAI

MAX_EXAMPLES = 60


def _config(upstream_url: str) -> gwconfig.Config:
    return gwconfig.parse(
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "providers": [
                {
                    "name": "openai",
                    "base_url": upstream_url,
                    "api_key": "sk-upstream-primary-key",
                    "models": ["gpt-4o-mini", "text-embedding-3-small"],
                }
            ],
            "strategies": [{"name": "default", "allow": ["*"], "auto": ["openai/gpt-4o-mini"]}],
            "clients": [{"name": "alice", "secret": ALICE, "strategy": "default"}],
            "usage": {"path": None},
            "logging": {"access": False},
        },
        {},
        types=TYPES,
    )


schema = schemathesis.openapi.from_dict(orjson.loads(create_app(_config("http://127.0.0.1:9/v1"))[OPENAPI]))
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES)


class Stack:
    """A fake upstream and the gateway on an event loop of their own, for schemathesis's blocking client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self) -> None:
        self.fake = await FakeOpenAI("schemathesis").start()
        self.runner = web.AppRunner(create_app(_config(self.fake.base_url)), handler_cancellation=True, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.fake.stop()

    def __enter__(self) -> Stack:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack() as s:
        yield s


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_generated_requests(case, stack):
    # Every check but "a schema-valid request is accepted": a well-formed request for a model that does
    # not exist is rightly 404, and one the upstream refuses rightly 400.
    case.call_and_validate(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=30,
        excluded_checks=[positive_data_acceptance],
    )
