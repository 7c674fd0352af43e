"""Provider adapters: one small module per upstream wire format.

``base`` (the adapter interface, :class:`~providers.base.WireFormat`: what a wire format declares),
``registry`` (``TYPES``: every wire format by its config ``type``), ``failures`` (what an adapter
raises), the wire formats ``openai_compatible``, ``azure``, ``anthropic``, ``gemini``, ``ollama`` (each
declares its adapter, default ``base_url`` and own config keys in its module), ``native`` (the frame
of the translating ones), ``openai_shapes`` (OpenAI's chunks and answers, built for them), and
``transport`` (calls, deadlines, stream readers, model lists).
"""

from providers.base import Provider, WireFormat
from providers.registry import TYPES

__all__ = ["TYPES", "Provider", "WireFormat"]
