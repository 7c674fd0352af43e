"""Azure OpenAI: the OpenAI wire format at deployment URLs
(``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...``) with an ``api-key``
header. ``deployments`` maps a model name to its deployment; a model without an entry is taken to be
deployed under its own name. The model list is the configured ``models``, else the deployments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from aiohttp import hdrs

from gateway.config import ProviderConfig, Reader, TypeOptions
from providers.base import ModelInfo, WireFormat
from providers.openai_compatible import PATHS, OpenAICompatProvider


@dataclass(frozen=True)
class AzureOptions(TypeOptions):
    api_version: str  # the api-version query parameter
    deployments: Mapping[str, str] = field(default_factory=dict)  # model name -> deployment name

    @classmethod
    def read(cls, r: Reader, m: Mapping[str, Any], path: str) -> Self | None:
        api_version = r.string(m["api_version"], f"{path}.api_version") if "api_version" in m else None
        if "api_version" not in m:
            r.problem(f"{path}.api_version", "required for type azure (e.g. 2024-10-21)")
        raw = m.get("deployments") or {}
        deployments: dict[str, str] = {}
        if not isinstance(raw, dict):
            r.problem(f"{path}.deployments", "expected a mapping of model name to deployment name")
        else:
            deployments = {
                str(k): v for k, v in ((k, r.string(v, f"{path}.deployments.{k}")) for k, v in raw.items()) if v
            }
        if "models" not in m and not deployments:
            r.problem(path, "type azure needs `models` or `deployments` (Azure has no model list to discover)")
        return None if api_version is None else cls(api_version, deployments)


class AzureProvider(OpenAICompatProvider):
    capabilities = frozenset({"chat", "completions", "embeddings"})  # Azure's Responses API has other URLs

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        if not isinstance(config.options, AzureOptions):
            raise TypeError(f"provider {config.name!r}: type azure needs its options (api_version)")
        self.options = config.options
        self._headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        if self.secret is not None:
            self._headers["api-key"] = self.secret
        self._query = f"?api-version={quote(self.options.api_version, safe='')}"

    def _url(self, endpoint: str, model: str) -> str:
        deployment = quote(self.options.deployments.get(model, model), safe="")
        return f"{self.config.base_url}/openai/deployments/{deployment}{PATHS[endpoint]}{self._query}"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(name) for name in self.options.deployments]


WIRE_FORMAT = WireFormat("azure", AzureProvider, options=AzureOptions)  # base_url: https://{resource}.openai.azure.com
