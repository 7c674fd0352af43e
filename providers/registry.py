"""The wire formats the gateway speaks, by the ``type`` a provider gives in the YAML.

Each wire format is declared once, in its adapter's module, as a :class:`providers.base.WireFormat`
named ``WIRE_FORMAT``: its name, its adapter class (which says what it serves, ``capabilities``), its
default ``base_url``, and its own config keys (a :class:`gateway.config.TypeOptions` subclass that
reads them and reports their problems with their YAML paths). This module only lists them.

The config sits below the providers (they import its types), so it cannot look the wire formats up
itself: whoever parses a config passes :data:`TYPES` in (``gateway.config.parse(..., types=TYPES)``;
the CLI, the runtime's reload and the tests' fixtures do). Passed in rather than registered: no
module-level table that importing an adapter fills in as a side effect.

A new wire format touches its own module (the adapter, its options if it has any, its
``WIRE_FORMAT``), the one line below that names it, and its tests (a fake upstream in
``tests/fakes/wire.py`` and its type in ``tests/providers/test_contract.py``). Nothing in
``gateway/`` changes: the config reader, ``check-config`` and the runtime read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from providers import anthropic, azure, gemini, ollama, openai_compatible
from providers.base import WireFormat

#: type name -> wire format; read-only
TYPES: Mapping[str, WireFormat] = MappingProxyType(
    {
        f.name: f
        for f in (
            openai_compatible.WIRE_FORMAT,
            anthropic.WIRE_FORMAT,
            gemini.WIRE_FORMAT,
            ollama.WIRE_FORMAT,
            azure.WIRE_FORMAT,
        )
    }
)
