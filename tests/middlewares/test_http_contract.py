"""Every layer's errors in the OpenAI shape, over raw HTTP; auth and permission rules."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from tests.conftest import ALICE, BOB, bearer

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def assert_openai_error(doc, status_code=None):
    assert set(doc) == {"error"}
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    if status_code:
        assert doc["error"]["code"] == status_code


async def test_health_needs_no_auth_on_both_prefixes(gw, http):
    for path in ("/health", "/v1/health"):
        async with http.get(gw.url + path) as resp:
            assert resp.status == 200
            doc = await resp.json()
        assert doc["status"] == "ok" and doc["providers"] == 2 and doc["clients"] == 3
        assert isinstance(doc["version"], str) and doc["uptime_seconds"] >= 0


async def test_openapi_is_a_valid_3_0_document(gw, http):
    async with http.get(gw.url + "/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    validate(doc)
    assert doc["openapi"].startswith("3.0")
    assert {"/health", "/models", "/chat/completions", "/completions", "/embeddings", "/openapi.json"} <= set(
        doc["paths"]
    )
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    chat = doc["paths"]["/chat/completions"]["post"]
    assert chat["security"] == [{"bearerAuth": []}]
    assert {"200", "401", "403", "404", "429", "503"} <= set(chat["responses"])
    assert "messages" in doc["components"]["schemas"]["ChatCompletionRequest"]["required"]


async def test_openapi_lets_a_generated_client_stream_get_tokens_and_read_answers(gw, http):
    async with http.get(gw.url + "/openapi.json") as resp:
        doc = await resp.json()
    validate(doc)
    paths = doc["paths"]
    for path in ("/chat/completions", "/completions"):  # stream: true answers an event stream
        assert set(paths[path]["post"]["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    body = paths["/oauth/token"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/x-www-form-urlencoded", "application/json"}
    assert all(media["schema"]["required"] == ["grant_type"] for media in body["content"].values())
    schemas = doc["components"]["schemas"]
    for name in ("ChatCompletion", "Completion"):
        assert {"id", "object", "created", "model", "choices"} <= set(schemas[name]["required"])
    assert "/models/{id}" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "405" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)
    for path in ("/chat/completions", "/completions", "/embeddings"):
        assert "415" in paths[path]["post"]["responses"]
    assert [s["url"] for s in doc["servers"]] == ["/v1", "/"]
    for server in doc["servers"]:  # each one works, relative to where the document is served
        async with http.get(gw.url + server["url"].rstrip("/") + "/models", headers=bearer()) as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "invalid_api_key"),
        ({"Authorization": "Basic abc"}, "invalid_api_key"),
        ({"Authorization": "Bearer "}, "invalid_api_key"),
        ({"Authorization": "Bearer lr-wrong-0123456789abcdef"}, "invalid_api_key"),
        ({"Authorization": "Bearer internal-test"}, "invalid_api_key"),
    ],
)
async def test_unauthenticated_is_401(gw, http, headers, code):
    for path in ("/models", "/v1/models"):
        async with http.get(gw.url + path, headers=headers) as resp:
            assert resp.status == 401
            assert_openai_error(await resp.json(), code)


async def test_bearer_scheme_is_case_insensitive(gw, http):
    async with http.get(gw.url + "/models", headers={"Authorization": f"bearer {ALICE}"}) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/nope", 404),
        ("POST", "/v1/nope", 404),
        ("GET", "/v1/chat/completions", 405),
        ("DELETE", "/models", 405),
        ("PUT", "/v1/embeddings", 405),
    ],
)
async def test_routing_errors_are_openai_shaped(gw, http, method, path, status):
    async with http.request(method, gw.url + path, headers=bearer()) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        assert_openai_error(await resp.json())
        if status == 405:
            assert resp.headers["Allow"]


@pytest.mark.parametrize(
    "body, ctype, status, param",
    [
        (b"{not json", "application/json", 400, None),
        (b"", "application/json", 400, None),
        (b"[1, 2]", "application/json", 400, None),
        (b'{"model": 1, "messages": []}', "application/json", 400, "model"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "application/json", 400, "model"),
        (b'{"model": "openai/gpt-4o-mini"}', "application/json", 400, "messages"),
        (b'{"model": "openai/gpt-4o-mini", "messages": "hi"}', "application/json", 400, "messages"),
        (b'{"model": "openai/gpt-4o-mini", "messages": [1]}', "application/json", 400, "messages[0]"),
        (
            b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user"}], "stream": "yes"}',
            "application/json",
            400,
            "stream",
        ),
        (b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user"}], "x": NaN}', "application/json", 400, None),
        (b"model=x", "application/x-www-form-urlencoded", 415, None),
    ],
)
async def test_bad_bodies_are_4xx(gw, http, upstreams, body, ctype, status, param):
    async with http.post(
        gw.url + "/v1/chat/completions", data=body, headers={**bearer(), "Content-Type": ctype}
    ) as resp:
        assert resp.status == status
        doc = await resp.json()
    assert_openai_error(doc)
    assert doc["error"]["param"] == param
    assert not [r for r in upstreams[0].received if r.body is not None]


@pytest.mark.parametrize(
    "path, body, param",
    [
        ("/embeddings", {"model": "openai/text-embedding-3-small"}, "input"),
        ("/embeddings", {"model": "openai/text-embedding-3-small", "input": 5}, "input"),
        ("/completions", {"model": "openai/gpt-4o-mini"}, "prompt"),
        ("/completions", {"model": "openai/gpt-4o-mini", "prompt": []}, "prompt"),
    ],
)
async def test_required_fields_per_endpoint(gw, http, path, body, param):
    async with http.post(gw.url + path, json=body, headers=bearer()) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == param


async def test_body_over_the_limit_is_413(upstreams, start_gateway, http):
    from tests.conftest import standard_config

    gw = await start_gateway(
        standard_config(*upstreams, server={"host": "127.0.0.1", "port": 0, "max_body_bytes": 4096})
    )
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    async with http.post(gw.url + "/chat/completions", json=big, headers=bearer()) as resp:
        assert resp.status == 413
        doc = await resp.json()
    assert_openai_error(doc, "request_too_large")
    assert "4096" in doc["error"]["message"]


async def test_permission_and_existence(gw, http):
    cases = [
        (BOB, "openai/gpt-4o-mini", 403, "model_not_allowed"),
        (BOB, "backup/gpt-4o-mini", 200, None),
        (BOB, "backup/not-a-model", 404, "model_not_found"),  # discovered list says no
        (ALICE, "openai/gpt-5", 404, "model_not_found"),  # configured list says no
        (ALICE, "gpt-4o-mini", 404, "model_not_found"),  # not a provider/model id
    ]
    for key, model, status, code in cases:
        async with http.post(gw.url + "/chat/completions", json={**CHAT, "model": model}, headers=bearer(key)) as resp:
            assert resp.status == status, (key, model)
            if code:
                doc = await resp.json()
                assert_openai_error(doc, code)
                assert doc["error"]["param"] == "model"


async def test_request_passes_through_unchanged_except_model(gw, http, upstreams):
    primary, _ = upstreams
    body = {
        **CHAT,
        "logit_bias": {"50256": -100},
        "x_custom": {"nested": [1, 2.5, None, True]},
        "seed": 12345678901234567890123,
        "user": "u-1",
    }
    async with http.post(gw.url + "/chat/completions", json=body, headers={**bearer(), "X-Extra": "1"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["model"] == "openai/gpt-4o-mini"
    sent = primary.received[-1]
    assert sent.body == {**body, "model": "gpt-4o-mini"}
    assert ALICE not in str(sent.headers)


@pytest.mark.parametrize("number", [-9223372036854775809, 18446744073709551616, -18446744073709551616])
async def test_integers_beyond_64_bits_pass_through_exactly(gw, http, upstreams, number):
    body = {**CHAT, "seed": number}  # the only long number in the body: 19 or 20 digits
    async with http.post(gw.url + "/chat/completions", json=body, headers=bearer()) as resp:
        assert resp.status == 200
    assert upstreams[0].received[-1].body["seed"] == number


async def test_stream_headers_and_sse_framing(gw, http):
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert "no-store" in resp.headers["Cache-Control"]
        assert resp.headers["X-Accel-Buffering"] == "no"
        raw = await resp.read()
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") for e in events[:-1])


async def test_stream_adds_role_and_usage_the_client_did_not_ask_for(gw, http, upstreams):
    from tests.conftest import sse_events
    from tests.fakes.openai_upstream import Script

    primary, _ = upstreams
    primary.queue(Script(role_in_first=False))
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == "[DONE]" and events[-2]["usage"]["total_tokens"] == 12
    assert events[-2]["choices"][0]["finish_reason"] == "stop"  # on the finish chunk: no chunk without choices
    assert primary.received[-1].body["stream_options"] == {"include_usage": True}


async def test_stream_keeps_the_clients_stream_options(gw, http, upstreams):
    primary, _ = upstreams
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": False, "other": 1}}
    async with http.post(gw.url + "/chat/completions", json=body, headers=bearer()) as resp:
        await resp.read()
    assert primary.received[-1].body["stream_options"] == {"include_usage": True, "other": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100000 + b"]" * 100000,
        b'{"model": "openai/gpt-4o-mini", "n": 123456789012345678901234, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    ],
)
async def test_hostile_json_is_400_not_500(gw, http, body):
    async with http.post(
        gw.url + "/chat/completions", data=body, headers={**bearer(), "Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert_openai_error(await resp.json())


async def test_the_secret_may_come_as_x_api_key_as_anthropic_clients_send_it(gw, http):
    for headers, status in (
        ({"x-api-key": ALICE}, 200),
        ({"x-api-key": "lr-not-a-client-secret-0123456789"}, 401),
        ({"x-api-key": ""}, 401),
        ({"Authorization": f"Bearer {ALICE}", "x-api-key": "lr-not-a-client-secret-0123456789"}, 200),
    ):
        async with http.get(gw.url + "/v1/models", headers=headers) as resp:
            assert resp.status == status, headers
            if status == 401:
                assert (await resp.json())["error"]["code"] == "invalid_api_key"
