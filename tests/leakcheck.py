"""The whole test run's logs, grepped for secrets at the end (see conftest's session hooks).

Every log record of the gateway (at DEBUG) and everything a gateway process printed is kept; a
secret a test used, an access token, or an upstream key found in any of it fails the run.
"""

from __future__ import annotations

import logging
import re

LINES: list[str] = []
SECRETS: set[str] = set()
# never legitimately in a log: access tokens, and the upstream keys every test config uses
PATTERNS = re.compile(r"lra[ts]\.[A-Za-z0-9_-]{8,}|sk-upstream-[a-z]+-key")


def register(*secrets: str) -> None:
    SECRETS.update(s for s in secrets if s)


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            LINES.append(self.format(record))
        except Exception:  # a record that cannot be formatted is not a leak; never break a test on it
            pass


def leaks() -> list[str]:
    found = []
    for line in LINES:
        hits = [s for s in SECRETS if s in line] + PATTERNS.findall(line)
        if hits:
            found.append(f"{sorted(set(hits))!r} in: {line[:300]}")
    return found
