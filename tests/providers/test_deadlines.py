"""The shared deadline keeper: expires on time (never early, within a tick late), restarts, leaves a
cancellation from elsewhere a cancellation, and ends every case as ``asyncio.timeout`` (the plain
version it stands in for) ends it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from providers.transport.deadlines import TICK, Deadlines


async def _timed(deadlines: Deadlines, seconds: float, work: float) -> float:
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.limit(seconds):
            await asyncio.sleep(work)
    return loop.time() - began


async def test_expires_after_its_seconds_and_within_a_tick():
    waited = await _timed(Deadlines(), 0.3, 5)
    assert 0.3 <= waited < 0.3 + TICK + 0.1


async def test_a_block_that_ends_in_time_returns_its_value_and_disarms():
    deadlines = Deadlines()
    with deadlines.limit(0.2):
        await asyncio.sleep(0.05)
        value = 42
    await asyncio.sleep(0.3)  # past the deadline: nothing fires into this task any more
    assert value == 42
    assert deadlines._handle is None and not deadlines._buckets  # the tick timer stopped with nothing armed


async def test_many_limits_only_the_due_ones_fire():
    deadlines = Deadlines()

    async def call(seconds: float, work: float) -> str:
        try:
            with deadlines.limit(seconds):
                await asyncio.sleep(work)
            return "done"
        except TimeoutError:
            return "timeout"

    results = await asyncio.gather(
        *(call(0.25, 0.1) for _ in range(50)), *(call(0.1, 1) for _ in range(50)), *(call(5, 0.4) for _ in range(50))
    )
    assert results == ["done"] * 50 + ["timeout"] * 50 + ["done"] * 50


async def test_restart_gives_the_next_phase_its_own_time():
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        with deadlines.limit(0.3) as limit:
            await asyncio.sleep(0.2)  # the first phase ends in time
            limit.restart(0.3)
            await asyncio.sleep(5)
    assert 0.5 <= loop.time() - began < 0.5 + TICK + 0.15


async def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    deadlines = Deadlines()

    async def call() -> None:
        with deadlines.limit(0.2):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert not any(deadlines._buckets.values())


async def test_the_timeout_can_be_caught_and_the_task_goes_on():
    deadlines = Deadlines()
    with pytest.raises(TimeoutError):
        with deadlines.limit(0.1):
            await asyncio.sleep(5)
    await asyncio.sleep(0.05)  # no cancellation left pending in this task
    assert asyncio.current_task().cancelling() == 0


@contextlib.asynccontextmanager
async def _keeper(seconds: float) -> AsyncIterator[None]:
    with Deadlines().limit(seconds):
        yield


@contextlib.asynccontextmanager
async def _keeper_in_phases(seconds: float) -> AsyncIterator[None]:
    """Two phases of ``seconds / 2`` each, the way a plain answer's call restarts its limit."""
    with Deadlines().limit(seconds / 2) as limit:
        await asyncio.sleep(seconds / 4)
        limit.restart(seconds / 2)
        yield


async def _outcome(
    limit: Callable[[float], AbstractAsyncContextManager[object]],
    seconds: float,
    work: float,
    cancel_at: float | None,
    outer: float | None,
) -> tuple[str, int]:
    """How a call limited to ``seconds`` doing ``work`` seconds ends (cancelled from elsewhere at
    ``cancel_at``, inside an ``asyncio.timeout(outer)``), and what cancellations its task still counts."""

    async def call() -> tuple[str, int]:
        try:
            async with asyncio.timeout(outer):
                try:
                    async with limit(seconds):
                        await asyncio.sleep(work)
                    outcome = "done"
                except TimeoutError:
                    outcome = "timeout"
        except TimeoutError:
            outcome = "outer timeout"
        task = asyncio.current_task()
        assert task is not None
        return outcome, task.cancelling()

    task = asyncio.ensure_future(call())
    if cancel_at is not None:
        await asyncio.sleep(cancel_at)
        task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled", 0


@pytest.mark.parametrize(
    ("seconds", "work", "cancel_at", "outer"),
    [
        (0.3, 0.05, None, None),  # in time
        (0.1, 5, None, None),  # too long
        (0.5, 5, 0.1, None),  # cancelled from elsewhere first
        (0.1, 5, 0.4, None),  # expired before the cancellation came
        (0.5, 5, None, 0.1),  # an outer limit expires first
        (0.1, 5, None, 0.5),  # this limit expires inside a longer outer one
    ],
)
async def test_ends_every_case_as_asyncio_timeout_does(seconds, work, cancel_at, outer):
    plain = await _outcome(asyncio.timeout, seconds, work, cancel_at, outer)
    assert await _outcome(_keeper, seconds, work, cancel_at, outer) == plain
    assert await _outcome(_keeper_in_phases, seconds, work, cancel_at, outer) == plain
