"""A strategy's model aliases: the names agents hard-code (``claude-sonnet-4-5``, ``gpt-5-codex``) mapped to the
model ids the team chose, before the allow list is asked."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.config import AUTO_MODEL

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Aliases:
    """Exact names in a dict; the globs as one regex with a group per glob, so a name that is no alias costs
    one dict lookup, plus one regex match only when the strategy has globs."""

    exact: Mapping[str, str] = field(default_factory=dict)
    globs: re.Pattern[str] | None = None
    glob_targets: Mapping[str, str] = field(default_factory=dict)  # the glob's group name -> its target
    # provider names (and ``localrouter``): their ids always mean themselves, whatever a glob would match
    reserved: frozenset[str] = frozenset()

    @classmethod
    def compile(cls, aliases: Mapping[str, str], providers: Iterable[str]) -> Aliases:
        exact = {name: target for name, target in aliases.items() if not GLOB_CHARS.intersection(name)}
        globs = [(name, target) for name, target in aliases.items() if name not in exact]
        # alternatives are tried left to right, so the first glob written that matches is the one that answers
        pattern = "|".join(f"(?P<g{i}>{fnmatch.translate(name)})" for i, (name, _) in enumerate(globs))
        targets = {f"g{i}": target for i, (_, target) in enumerate(globs)}
        reserved = frozenset((*providers, AUTO_MODEL.partition("/")[0]))
        return cls(exact, re.compile(pattern) if globs else None, targets, reserved)

    def resolve(self, model_id: str) -> str:
        """The model id ``model_id`` stands for: an exact alias's target, else the first matching glob's, else
        ``model_id`` itself."""
        target = self.exact.get(model_id)
        if target is not None:
            return target
        if self.globs is None:
            return model_id
        provider, sep, _ = model_id.partition("/")
        if sep and provider in self.reserved:
            return model_id
        found = self.globs.match(model_id)
        # lastgroup names the outermost group that closed last: the glob's own, whatever groups translate() made
        return model_id if found is None or found.lastgroup is None else self.glob_targets[found.lastgroup]
