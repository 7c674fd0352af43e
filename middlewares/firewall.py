"""The firewall's look at an inference request (its model's chain already resolved): its prompts scanned
for secrets, then rules on the model, which may hold the request for an admin's decision (before any byte
of an answer). Only for strategies the firewall looks at (``Policy.screened``)."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import discovery
from gateway.firewall import APPROVALS_PAGE
from gateway.keys import BODY, CHAIN, EXCHANGE, FIREWALL, OBSERVER, PRINCIPAL, ROUTE, RUNTIME


def approvals_link(request: web.Request) -> str:
    return discovery.base_url(request, request.app[OBSERVER].trusted) + APPROVALS_PAGE


async def screen(request: web.Request) -> None:
    principal, config, firewall = request[PRINCIPAL], request[RUNTIME].config, request.app[FIREWALL]
    client, body, mode = principal.client.name, request[BODY], config.firewall.secrets
    # the scan first: a request its secret refuses is never held for an admin, nor shown to one
    if mode != "off" and firewall.scan(client, mode, body) and mode == "log" and request.app[OBSERVER].bodies:
        request[EXCHANGE].request_body = firewall.redacted(body)  # forwarded as sent, logged without its secrets
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
