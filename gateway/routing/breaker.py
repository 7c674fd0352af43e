"""Cooldown per target (a circuit breaker): skip a target that keeps failing, then probe it again.

closed -> (``failures`` failed attempts in a row) -> open for ``seconds`` -> half-open: one request
probes it while the others still skip it -> a success closes it, a failure opens it again.
State is kept per target id across config reloads; each target's thresholds come from its
provider's ``cooldown`` config at the moment of each failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.config import Cooldown


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class Breakers:
    def __init__(self) -> None:
        self._states: dict[str, _State] = {}
        self._last_errors: dict[str, str] = {}  # per target, kept after it recovers (the operator's view)

    def blocked(self, target: str, now: float | None = None) -> float | None:
        """Seconds until ``target`` may be tried, or None if this caller may try it now."""
        state = self._states.get(target)
        if state is None or state.open_until == 0.0:
            return None
        now = time.monotonic() if now is None else now
        if now < state.open_until:
            return state.open_until - now
        if state.probing:  # another request is probing it right now
            return 1.0
        state.probing = True
        return None

    def cooling(self, target: str) -> bool:
        """``target`` is cooling down now (a look that changes nothing: no probe is claimed)."""
        state = self._states.get(target)
        return state is not None and time.monotonic() < state.open_until

    def failed(self, target: str, cooldown: Cooldown, now: float | None = None, reason: str | None = None) -> bool:
        """Count a failed attempt; True if the target is now cooling down."""
        if reason is not None:
            self._last_errors[target] = reason
        if cooldown.failures <= 0:
            return False
        state = self._states.setdefault(target, _State())
        state.failures += 1
        if state.probing or state.failures >= cooldown.failures:
            state.open_until = (time.monotonic() if now is None else now) + cooldown.seconds
            state.probing = False
            return True
        return False

    def succeeded(self, target: str) -> None:
        self._states.pop(target, None)

    def reset(self, target: str) -> None:
        """An operator ended the target's cooldown: closed again, its failures forgotten."""
        self.succeeded(target)

    def last_error(self, target: str) -> str | None:
        return self._last_errors.get(target)

    def state(self, target: str, now: float | None = None) -> tuple[str, float | None]:
        """closed, open or probing, and (open) the seconds until it may be tried."""
        state = self._states.get(target)
        if state is None or state.open_until == 0.0:
            return "closed", None
        now = time.monotonic() if now is None else now
        if now < state.open_until:
            return "open", state.open_until - now
        return "probing", None

    def abandoned(self, target: str) -> None:
        """The attempt ended without a verdict (the client left): let another request probe."""
        state = self._states.get(target)
        if state is not None:
            state.probing = False

    def snapshot(self, now: float | None = None) -> list[dict[str, object]]:
        """Targets that are not plainly healthy, for ``/health?detail=1``."""
        now = time.monotonic() if now is None else now
        out: list[dict[str, object]] = []
        for target, state in sorted(self._states.items()):
            if state.open_until == 0.0:
                out.append({"target": target, "state": "closed", "consecutive_failures": state.failures})
            elif now < state.open_until:
                out.append(
                    {
                        "target": target,
                        "state": "cooling_down",
                        "consecutive_failures": state.failures,
                        "retry_in_seconds": round(state.open_until - now, 1),
                    }
                )
            else:
                out.append({"target": target, "state": "half_open", "consecutive_failures": state.failures})
        return out


@dataclass(slots=True)
class Verdict:
    """How a stream that already started ends, reported to its target's breaker."""

    breakers: Breakers
    target: str
    cooldown: Cooldown

    def succeeded(self) -> None:
        self.breakers.succeeded(self.target)

    def failed(self) -> None:
        self.breakers.failed(self.target, self.cooldown)

    def abandoned(self) -> None:
        self.breakers.abandoned(self.target)
