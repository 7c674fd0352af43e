"""Walking a loaded YAML tree: typed values with their paths, every problem collected, ``${VAR}`` expanded."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Reader:
    """Walks the YAML tree, collecting problems with their paths instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def mapping(self, value: Any, path: str, keys: Mapping[str, bool]) -> dict[str, Any] | None:
        """A mapping whose keys are among ``keys`` (name -> required)."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping")
            return None
        for key in value:
            if key not in keys:
                self.problem(join(path, str(key)), "unknown key")
        for key, required in keys.items():
            if required and key not in value:
                self.problem(join(path, key), "required")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, "expected a list")
            return []
        return value

    def string(self, value: Any, path: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(path, "expected a string")
            return None
        return self.expand(str(value), path)

    def expand(self, text: str, path: str) -> str | None:
        missing = [m.group(1) for m in _ENV_RE.finditer(text) if m.group(1) not in self.env]
        for name in missing:
            self.problem(path, f"environment variable {name} is not set")
        if missing:
            return None
        return _ENV_RE.sub(lambda m: self.env[m.group(1)], text)

    def name(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is not None and not _NAME_RE.match(text):
            self.problem(path, f"invalid name {text!r} (letters, digits, '_', '.', '-')")
            return None
        return text

    def number(self, value: Any, path: str, *, integer: bool = False, minimum: float | None = None) -> Any:
        """A number, finite; positive unless ``minimum`` says otherwise. A string only as an environment
        reference (``${VAR}``) holding one: a quoted number is taken for a mistake, not guessed at."""
        kind = "an integer" if integer else "a number"
        if isinstance(value, str):
            if not _ENV_RE.search(value):
                self.problem(path, f"expected {kind}")
                return None
            try:
                value = (int if integer else float)(self.expand(value, path) or "")
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            self.problem(path, f"expected {kind}")
            return None
        if not math.isfinite(value):
            self.problem(path, f"expected {kind}, not {value}")
            return None
        if minimum is None and value <= 0:
            self.problem(path, "must be positive")
            return None
        if minimum is not None and value < minimum:
            self.problem(path, f"must be >= {minimum}")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if isinstance(value, str):
            value = {"true": True, "false": False}.get(self.expand(value, path) or "", value)
        if not isinstance(value, bool):
            self.problem(path, "expected true or false")
            return None
        return value

    def strings(self, value: Any, path: str, check: Callable[[str, str], bool] | None = None) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.sequence(value, path)):
            text = self.string(item, f"{path}[{i}]")
            if text is not None and (check is None or check(text, f"{path}[{i}]")):
                out.append(text)
        return tuple(out)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Secret:
    """A secret string that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)
