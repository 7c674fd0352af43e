"""Which upstream MCP items a strategy may see and call: its ``mcp`` globs, as a pure function.

Every item has a qualified name ``{server}__{name}``: a tool's or prompt's name, a resource's URI, a
resource template's URI template. A glob grants an item when it matches that qualified name, or the
bare server name (``files``: all of that server's tools, prompts and resources). So ``files__*`` grants
all of ``files`` too, ``files__read_*`` two tools, ``*`` everything; a strategy with no ``mcp`` entry
sees nothing. Globs are ``fnmatch``'s, case-sensitive, ``*`` matching any characters (``/`` included).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import MCP_SEPARATOR


def qualified(server: str, name: str) -> str:
    """``{server}__{name}``: how the gateway lists an upstream's tool or prompt."""
    return f"{server}{MCP_SEPARATOR}{name}"


def split(qualified_name: str) -> tuple[str, str] | None:
    """``(server, name)`` of a qualified name, or None when it has no server prefix. Server names hold no
    ``__`` and do not end with ``_``, so the first ``__`` is the separator."""
    server, sep, name = qualified_name.partition(MCP_SEPARATOR)
    return (server, name) if sep and server and name else None


@dataclass(frozen=True, slots=True)
class McpAccess:
    """A strategy's ``mcp`` globs, compiled once into one regular expression."""

    pattern: re.Pattern[str] | None = None  # None: no ``mcp`` entry, nothing is visible
    globs: tuple[str, ...] = ()

    @classmethod
    def compile(cls, globs: Sequence[str] | None) -> McpAccess:
        if not globs:
            return cls(None)
        return cls(re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs)), tuple(globs))

    def sees(self, server: str) -> bool:
        """Whether anything of ``server`` may be visible: whom a change of its lists concerns. Generous (a
        wildcard before the end of ``{server}__`` counts), never short."""
        return any(_may_grant(glob, server) for glob in self.globs)

    def allows(self, server: str, name: str) -> bool:
        """Whether item ``name`` (a tool's or prompt's name, a resource's URI) of ``server`` is visible and
        callable."""
        if self.pattern is None:
            return False
        return bool(self.pattern.match(server) or self.pattern.match(qualified(server, name)))


def _may_grant(glob: str, server: str) -> bool:
    wild = next((i for i, c in enumerate(glob) if c in "*?["), None)
    prefix = qualified(server, "")
    if wild is None:
        return glob == server or glob.startswith(prefix)
    head = glob[:wild]
    return prefix.startswith(head) or head.startswith(prefix)


def allowed(globs: Sequence[str] | None, server: str, name: str) -> bool:
    """:meth:`McpAccess.allows` for globs not compiled beforehand."""
    return McpAccess.compile(globs).allows(server, name)
