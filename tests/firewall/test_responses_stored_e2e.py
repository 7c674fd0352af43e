"""A Responses request continued with ``previous_response_id``: the stored conversation goes to the upstream
again, so it is scanned as the request's own prompts are (a secret stored under ``log`` is refused under
``block`` and redacted under ``redact`` once the config says so)."""

from __future__ import annotations

import json

import openai
import pytest
import yaml

from gateway.keys import LIVE
from tests.firewall.conftest import AWS_KEY, config


async def test_a_stored_secret_is_scanned_when_the_conversation_is_continued(tmp_path, fake_upstream, start_gateway):
    fake = await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))
    path = tmp_path / "localrouter.yaml"

    def write(secrets: str) -> None:
        data = config(fake.base_url, rules=[], secrets=secrets)
        data["server"]["watch_config"] = False
        data["usage"] = {"path": str(tmp_path / "usage.db")}
        path.write_text(yaml.safe_dump(data))

    write("log")
    gw = await start_gateway(path)
    async with gw.sdk() as sdk:
        first = await sdk.responses.create(model="openai/gpt-4o-mini", input=f"deploy with key {AWS_KEY} please")
        assert AWS_KEY in json.dumps(fake.received[-1].body)  # log: forwarded as sent

        write("block")
        assert gw.app[LIVE].reload()
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.responses.create(model="openai/gpt-4o-mini", input="and now?", previous_response_id=first.id)
        assert "AWS Access Key in previous_response[0]" in caught.value.message and AWS_KEY not in caught.value.message
        assert len(fake.received) == 1  # nothing reached the upstream

        write("redact")
        assert gw.app[LIVE].reload()
        await sdk.responses.create(model="openai/gpt-4o-mini", input="and now?", previous_response_id=first.id)
        sent = json.dumps(fake.received[-1].body)
        assert AWS_KEY not in sent and "[REDACTED:AWS Access Key]" in sent and "and now?" in sent
