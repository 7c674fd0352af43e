"""Secrets in tool calls' arguments, and in the access log, over real HTTP: arguments are JSON text, scanned
as the JSON they hold (a quoted assignment in a string value is found) and redacted as JSON (still valid,
no other key or line lost); with ``logging.bodies: true`` the logged request never holds a found secret,
whatever the mode (the leak check reads every access line as well)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp import MCPError

from gateway.api.mcp import FIREWALL_DENIED
from tests import leakcheck
from tests.conftest import bearer
from tests.firewall.conftest import AWS_KEY, DB_PASSWORD, GITHUB_TOKEN, config, waiting
from tests.firewall.test_mcp_e2e import connected, mcp_config

PASSWORD = "q8Zr7#Lm2@Vx9!pK4wTn"
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
leakcheck.register(PASSWORD, PEM_BODY)
CODE = {"code": f'secret_key = "{PASSWORD}"\nprint(1)'}


def chat_call(arguments: dict[str, Any]) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "write", "arguments": json.dumps(arguments)}}
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "write it"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
    }


def responses_call(arguments: dict[str, Any]) -> dict[str, Any]:
    call = {"type": "function_call", "call_id": "c1", "name": "write", "arguments": json.dumps(arguments)}
    output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    return {"model": "openai/gpt-4o-mini", "store": False, "input": [call, output]}


def sent_arguments(body: dict[str, Any]) -> Any:
    """The arguments the upstream got (a Responses request reaches the chat fake as chat), parsed (a JSON
    error here fails the test)."""
    [call] = [m for m in body["messages"] if m.get("tool_calls")]
    return json.loads(call["tool_calls"][0]["function"]["arguments"])


@pytest.fixture
async def fake(fake_upstream):
    return await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))


@pytest.mark.parametrize("endpoint,build", [("chat/completions", chat_call), ("responses", responses_call)])
async def test_a_quoted_assignment_in_arguments_is_blocked(fake, start_gateway, http, endpoint, build):
    gw = await start_gateway(config(fake.base_url, rules=[], secrets="block"))
    async with http.post(f"{gw.url}/v1/{endpoint}", json=build(CODE), headers=bearer()) as resp:
        assert resp.status == 403, await resp.text()
        message = (await resp.json())["error"]["message"]
    assert "Secret Keyword in" in message and ".arguments.code" in message and PASSWORD not in message
    assert fake.received == []


REDACTED = "[REDACTED:Secret Keyword]"
CASES = [
    (
        {"path": ".env", "content": f"DB_PASSWORD={PASSWORD}\nDEBUG=1\nPORT=8080\n"},
        {"path": ".env", "content": f"DB_PASSWORD={REDACTED}\nDEBUG=1\nPORT=8080\n"},
    ),
    ({"password": PASSWORD + '"', "user": "ada"}, {"password": REDACTED, "user": "ada"}),
    ({"password": "q8Zr7#Lm2\\Vx9!pK4wT\\", "user": "ada"}, {"password": REDACTED, "user": "ada"}),
    (
        {"content": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}", "mode": "600", "owner": "ada"},
        {"content": "[REDACTED:Private Key]", "mode": "600", "owner": "ada"},
    ),
    (
        {"cmd": f"export API_KEY='{PASSWORD}' && ./run", "cwd": "/srv"},
        {"cmd": f"export API_KEY='{REDACTED}' && ./run", "cwd": "/srv"},
    ),
    (CODE, {"code": f'secret_key = "{REDACTED}"\nprint(1)'}),
    ({AWS_KEY: "a key named by the secret"}, {"[REDACTED:AWS Access Key]": "a key named by the secret"}),
]


@pytest.mark.parametrize("build", [chat_call, responses_call])
async def test_redacted_arguments_stay_valid_json_and_keep_the_rest(fake, start_gateway, http, build):
    gw = await start_gateway(config(fake.base_url, rules=[], secrets="redact"))
    endpoint = "chat/completions" if build is chat_call else "responses"
    for arguments, expected in CASES:
        async with http.post(f"{gw.url}/v1/{endpoint}", json=build(arguments), headers=bearer()) as resp:
            assert resp.status == 200, await resp.text()
        assert sent_arguments(fake.received[-1].body) == expected
    # text that is not JSON is scanned as text
    body = chat_call({})
    body["messages"][1]["tool_calls"][0]["function"]["arguments"] = f"token {GITHUB_TOKEN} (not JSON"
    async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert resp.status == 200
    sent = fake.received[-1].body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert sent == "token [REDACTED:GitHub Token] (not JSON"


async def logged(gw: Any, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        while len(gw.access.lines) < count:
            await asyncio.sleep(0.05)
    return gw.access.lines


@pytest.mark.parametrize("mode", ["block", "redact", "log"])
async def test_the_logged_body_holds_no_secret_in_any_mode(fake, start_gateway, http, mode):
    gw = await start_gateway({**config(fake.base_url, rules=[], secrets=mode), "logging": {"bodies": True}})
    body = chat_call({"path": ".env", "content": f"DB_PASSWORD={DB_PASSWORD}\n"})
    body["messages"][0]["content"] = f"my key is {AWS_KEY}"
    async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert resp.status == (403 if mode == "block" else 200)
    [line] = await logged(gw, 1)
    shown = line["request_body"]["messages"]
    assert shown[0]["content"] == "my key is [REDACTED:AWS Access Key]"
    assert json.loads(shown[1]["tool_calls"][0]["function"]["arguments"])["content"] == f"DB_PASSWORD={REDACTED}\n"
    assert AWS_KEY not in json.dumps(line) and DB_PASSWORD not in json.dumps(line)
    if mode == "log":  # forwarded as sent
        assert fake.received[-1].body["messages"][0]["content"] == f"my key is {AWS_KEY}"


@pytest.mark.parametrize("mode", ["block", "log"])
async def test_a_logged_mcp_call_holds_no_secret(tmp_path, start_gateway, mode):
    gw = await start_gateway({**mcp_config(tmp_path, secrets=mode), "logging": {"bodies": True}})
    async with connected(f"{gw.url}/mcp") as session:
        if mode == "block":
            with pytest.raises(MCPError):
                await session.call_tool("files__echo", {"text": f"password={DB_PASSWORD}"})
        else:
            await session.call_tool("files__echo", {"text": f"password={DB_PASSWORD}"})
    async with asyncio.timeout(10):
        while not [line for line in gw.access.lines if line.get("request_body")]:
            await asyncio.sleep(0.05)
    [call] = [line for line in gw.access.lines if line.get("request_body")]
    assert call["request_body"]["arguments"] == {"text": f"password={REDACTED}"}
    assert DB_PASSWORD not in json.dumps(gw.access.lines)


async def test_an_mcp_call_with_a_secret_is_refused_before_any_admin_is_asked(tmp_path, start_gateway, http):
    gw = await start_gateway(mcp_config(tmp_path, secrets="block"))  # files__greet: ask
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError) as caught:
            await asyncio.wait_for(session.get_prompt("files__greet", {"name": f"Ada {AWS_KEY}"}), 5)
    assert caught.value.error.code == FIREWALL_DENIED
    assert "AWS Access Key in arguments.name" in caught.value.error.message
    assert await waiting(http, gw.url, count=0) == []
