"""Secrets never appear in logs or answers, whatever goes wrong."""

from __future__ import annotations

import logging

from tests import leakcheck
from tests.conftest import ALICE, BOB, CAROL, bearer
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
UPSTREAM_KEYS = ("sk-upstream-primary-key", "sk-upstream-backup-key")
WRONG = "lr-wrong-secret-0123456789abcdef"
leakcheck.register(WRONG)


async def test_no_secret_in_logs_or_bodies(gw, http, upstreams, caplog):
    caplog.set_level(logging.DEBUG)
    primary, backup = upstreams
    bodies = []
    script = [
        (Script(status=401, body={"error": {"message": "bad key sk-upstream-primary-key"}}), Script(status=500)),
        (Script(status=400, body={"error": {"message": "echo sk-upstream-primary-key"}}), None),
        (Script(status=503, body=b"upstream says sk-upstream-primary-key"), Script(status=429)),
        (Script(cut_after=1), None),
    ]
    for first, second in script:
        primary.queue(first)
        if second:
            backup.queue(second)
        for stream in (False, True):
            async with http.post(
                gw.url + "/chat/completions", json={**CHAT, "stream": stream}, headers=bearer()
            ) as resp:
                bodies.append(await resp.text())
            if first.status != 200 and not stream:
                primary.queue(first)
                if second:
                    backup.queue(second)
    for key in (WRONG, CAROL, BOB):
        async with http.get(gw.url + "/models", headers=bearer(key)) as resp:
            bodies.append(await resp.text())
    async with http.get(gw.url + "/health") as resp:
        bodies.append(await resp.text())
    seen = caplog.text + "".join(bodies)
    assert "failed" in caplog.text  # the failures above were logged
    for secret in (ALICE, BOB, CAROL, WRONG, *UPSTREAM_KEYS):
        assert secret not in seen, secret


async def test_the_whole_run_leak_check_sees_the_gateways_logs_and_would_catch_a_secret(gw, http, upstreams):
    """The session-end grep (tests/leakcheck.py) reads every gateway log record of the run."""
    upstreams[0].queue(Script(status=500))
    before = len(leakcheck.LINES)
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200  # served by the fallback, the failure logged
    assert any(line.startswith("localrouter.fallback WARNING") for line in leakcheck.LINES[before:])
    logging.getLogger("localrouter.test").debug("probe %s", "lrat.abcdefghijkl")
    try:
        assert leakcheck.leaks() and "lrat.abcdefghijkl" in leakcheck.leaks()[-1]
    finally:
        leakcheck.LINES.pop()  # the probe itself is not a leak of the gateway
