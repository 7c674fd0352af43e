"""Provider adapters: one small module per upstream wire format."""

from providers.base import Provider
from providers.openai_compat import OpenAICompatProvider

ADAPTERS: dict[str, type[Provider]] = {"openai": OpenAICompatProvider}

__all__ = ["ADAPTERS", "Provider"]
