"""Secrets in prompts, over real HTTP: keys of several kinds planted in chat messages, tool-call arguments,
a streamed request, an Anthropic Messages request and a Responses one; ``block`` refuses naming the kind
and where, ``redact`` forwards ``[REDACTED:<kind>]``, ``log`` forwards and records. No answer, log line or
audit record ever holds a secret (the leak check reads every log line of the run); ordinary code and
prose are left alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from gateway.firewall.secrets import Detector, Scan
from tests.conftest import ALICE, bearer, sse_events
from tests.firewall.conftest import AWS_KEY, DB_PASSWORD, GITHUB_TOKEN, PEM, STRIPE_KEY, config
from tests.firewall.conftest import audit as audit_records
from tests.procs import ROOT

SECRETS = (AWS_KEY, GITHUB_TOKEN, STRIPE_KEY, DB_PASSWORD, PEM)


def planted() -> list[dict[str, Any]]:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "deploy", "arguments": json.dumps({"key": STRIPE_KEY})},
    }
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"my key is {AWS_KEY} and my token {GITHUB_TOKEN}"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": f"DB_PASSWORD={DB_PASSWORD}\n{PEM}"},
    ]


@pytest.fixture
async def fake(fake_upstream):
    return await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))


def _no_secret(*texts: Any) -> None:
    for text in texts:
        dumped = text if isinstance(text, str) else json.dumps(text)
        for secret in SECRETS:
            assert secret not in dumped and secret.split("\n")[1 if "\n" in secret else 0] not in dumped


async def test_block_names_the_kind_and_where_never_the_value(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url, rules=[], secrets="block"))
    async with gw.sdk() as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=planted())
    message = caught.value.body["message"]
    assert caught.value.body["code"] == "firewall_denied"
    assert "AWS Access Key in messages[1].content" in message and "GitHub Token in messages[1].content" in message
    assert "Stripe Access Key in messages[2].tool_calls[0].function.arguments" in message
    _no_secret(message, caught.value.response.text)
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0) as claude:
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await claude.messages.create(
                model="openai/gpt-4o-mini", max_tokens=9, messages=[{"role": "user", "content": f"key {AWS_KEY}"}]
            )
    assert "AWS Access Key in messages[0].content" in refused.value.body["error"]["message"]
    assert fake.received == []
    records = await audit_records(gw)
    assert {(r.subject, r.rule, r.action, r.actor) for r in records} >= {
        ("messages[1].content", "AWS Access Key", "block", "secrets"),
        ("messages[3].content", "Private Key", "block", "secrets"),
    }
    _no_secret([r.public() for r in records], gw.access.lines)


async def test_redact_forwards_the_rest_on_every_endpoint(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url, rules=[], secrets="redact"))
    async with gw.sdk() as sdk:
        answer = await sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=planted())
        assert answer.choices[0].message.content
        sent = fake.received[-1].body["messages"]
        assert sent[1]["content"] == "my key is [REDACTED:AWS Access Key] and my token [REDACTED:GitHub Token]"
        assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"key": "[REDACTED:Stripe Access Key]"}
        assert sent[3]["content"] == "DB_PASSWORD=[REDACTED:Secret Keyword]\n[REDACTED:Private Key]"
        await sdk.responses.create(model="openai/gpt-4o-mini", input=f"deploy with {GITHUB_TOKEN}")
        assert "[REDACTED:GitHub Token]" in json.dumps(fake.received[-1].body)
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": AWS_KEY}], "stream": True}
    async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert resp.status == 200 and (await sse_events(resp))[-1] == "[DONE]"
    assert fake.received[-1].body["messages"][0]["content"] == "[REDACTED:AWS Access Key]"
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0) as claude:
        await claude.messages.create(
            model="openai/gpt-4o-mini",
            max_tokens=9,
            system=f"token {GITHUB_TOKEN}",
            messages=[{"role": "user", "content": [{"type": "text", "text": f"stripe {STRIPE_KEY}"}]}],
        )
    sent = json.dumps(fake.received[-1].body)
    assert "[REDACTED:GitHub Token]" in sent and "[REDACTED:Stripe Access Key]" in sent
    _no_secret([r.body for r in fake.received], gw.access.lines)


async def test_log_forwards_and_records(fake, start_gateway, http):
    gw_data = config(fake.base_url, rules=[])
    del gw_data["firewall"]  # the default: log
    gw = await start_gateway(gw_data)
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": AWS_KEY}])
    assert fake.received[-1].body["messages"][0]["content"] == AWS_KEY  # forwarded as sent
    [record] = await audit_records(gw)
    assert (record.subject, record.rule, record.action) == ("messages[0].content", "AWS Access Key", "log")
    async with http.get(f"{gw.url}/metrics") as resp:
        assert 'localrouter_firewall_decisions_total{action="secrets_log",client="alice"} 1.0' in await resp.text()
    _no_secret([r.public() for r in await audit_records(gw)], gw.access.lines)


#: a keyword assigned an expression (an attribute, a call, a subscript, a variable), not a literal
EXPRESSIONS = (
    "self.secret_key = settings.SECRET_KEY",
    "const apiKey = process.env.NEXT_PUBLIC_API_KEY;",
    "secret = hashlib.sha256(token.encode()).hexdigest()",
)


async def test_ordinary_code_passes_under_block(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url, rules=[], secrets="block"))
    for line in EXPRESSIONS:
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"why does\n{line}\nfail?"}]}
        async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
            assert resp.status == 200, (line, await resp.text())
    assert len(fake.received) == len(EXPRESSIONS)


def test_ordinary_code_and_prose_are_left_alone():
    """The gateway's own source and README (code, YAML, prose about keys and secrets) hold no credential."""
    corpus = [ROOT / "README.md", *sorted((ROOT / "gateway" / "routing").glob("*.py"))]
    corpus += sorted((ROOT / "providers").glob("*.py")) + sorted((ROOT / "middlewares").glob("*.py"))
    corpus += [ROOT / "gateway" / "config" / "reader.py", ROOT / "gateway" / "auth" / "tokens.py"]
    prose = [
        "Set the api_key in your environment and never commit your password.",
        "The secret to a good sourdough is patience; the key is a warm kitchen.",
        'password = os.environ["DB_PASSWORD"]\napi_key = settings.get("api_key")\nsecret: str = "changeme"',
        "token = create_token(user_id=42)  # see docs/keys.md",
        "commit 3f2a9c1e7b4d5a6f8e9d0c1b2a3f4e5d6c7b8a9f  Merge branch 'main' of github.com:org/repo",
        "uuid 123e4567-e89b-12d3-a456-426614174000 and sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c",
        *EXPRESSIONS,
        "api_key = os.getenv('OPENAI_API_KEY')\nself.api_key = api_key or os.environ.get('API_KEY')",
        "password = getPasswordFromVault(userId)\nconst secretKey = useSecretKey();",
        "apiKey: config.apiKey,\nsecretKey: process.env.SECRET_KEY!,\npassword: passwordInput.value,",
        "apiKey = userApiKey\nclient_secret = credentials.client_secret",
        "private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)",
        "let secretKey = crypto.randomBytes(32).toString('hex');\npasswordHash = bcrypt.hashSync(password, 10)",
        "api_key=request.headers['X-Api-Key']\nsecretValue = secrets[secretName]",
        'String apiKey = System.getenv("API_KEY");\napi_key := os.Getenv("API_KEY")',
        "token_secret = base64.b64decode(raw_secret)\nsecret_arn = aws_secretsmanager_secret.db.arn",
    ]
    detector = Detector()
    for path in corpus:
        scan = Scan(detector, redact=False)
        assert scan.value(Path(path).read_text(), str(path)) is not None and scan.found == [], path
    for text in prose:
        scan = Scan(detector, redact=False)
        scan.value(text, "prose")
        assert scan.found == [], text


def test_overlapping_gate_words_are_all_found():
    """The one pass over a text finds every gate word, those overlapping another included: a JWT right
    after ``k`` (``keyJ...``) is still a JWT, an AWS key right after ``pass`` still an AWS key."""
    from gateway.firewall.secrets import Detector

    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    detector = Detector()
    assert [kind for kind, _ in detector.find(f"token k{jwt}")] == ["JSON Web Token"]
    assert "AWS Access Key" in [kind for kind, _ in detector.find("passAKIAZ3MXQ7R2LPT4KD6W here")]
