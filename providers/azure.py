"""Azure OpenAI: the OpenAI wire format at deployment URLs
(``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...``) with an ``api-key``
header. ``deployments`` maps a model name to its deployment; a model without an entry is taken to be
deployed under its own name. The model list is the configured ``models``, else the deployments."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
from aiohttp import hdrs

from gateway.config import ProviderConfig
from providers.base import ModelInfo
from providers.openai_compatible import PATHS, OpenAICompatProvider


class AzureProvider(OpenAICompatProvider):
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        if self.secret is not None:
            self._headers["api-key"] = self.secret
        self._query = f"?api-version={quote(config.api_version or '', safe='')}"

    def _url(self, endpoint: str, model: str) -> str:
        deployment = quote(self.config.deployments.get(model, model), safe="")
        return f"{self.config.base_url}/openai/deployments/{deployment}{PATHS[endpoint]}{self._query}"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(name) for name in self.config.deployments]
