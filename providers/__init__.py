"""Provider adapters: one small module per upstream wire format."""

from providers.anthropic import AnthropicProvider
from providers.azure import AzureProvider
from providers.base import Provider
from providers.gemini import GeminiProvider
from providers.ollama import OllamaProvider
from providers.openai_compatible import OpenAICompatProvider

ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "ollama": OllamaProvider,
    "azure": AzureProvider,
}

__all__ = ["ADAPTERS", "Provider"]
