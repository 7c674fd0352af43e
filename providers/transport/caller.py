"""What a call to an upstream needs of the provider making it: its config, its connection pool, its
credential (to scrub from what the upstream says) and the keeper of its calls' time limits. The adapter
base (providers.base.Provider) is one; the transport needs nothing else of it, so it does not import it."""

from __future__ import annotations

from typing import Protocol

import aiohttp

from gateway.config import ProviderConfig
from providers.transport.deadlines import Deadlines


class Caller(Protocol):
    config: ProviderConfig
    session: aiohttp.ClientSession
    secret: str | None
    deadlines: Deadlines
    client_timeout: aiohttp.ClientTimeout
