"""The firewall's look at an inference request (its model's chain already resolved): rules on the model,
which may hold the request for an admin's decision (before any byte of an answer), then its prompts
scanned for secrets. Only for strategies the firewall looks at (``Policy.screened``)."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import discovery
from gateway.firewall import APPROVALS_PAGE
from gateway.keys import BODY, CHAIN, FIREWALL, OBSERVER, PRINCIPAL, ROUTE, RUNTIME


def approvals_link(request: web.Request) -> str:
    return discovery.base_url(request, request.app[OBSERVER].trusted) + APPROVALS_PAGE


async def screen(request: web.Request) -> None:
    principal, config, firewall = request[PRINCIPAL], request[RUNTIME].config, request.app[FIREWALL]
    client, body = principal.client.name, request[BODY]
    if principal.policy.firewall:
        model = body["model"]
        request[CHAIN] = await firewall.judge_model(
            client,
            principal.policy.firewall,
            model,
            principal.policy.aliases.resolve(model),
            request[CHAIN],
            config,
            approvals_link(request),
            # a token count answers nothing from the model: it is not held (the request it counts for is)
            hold=request[ROUTE].endpoint != "count_tokens",
        )
    if config.firewall.secrets != "off":
        firewall.scan(client, config.firewall.secrets, body)
