"""The one startup failure a user meets most: the gateway cannot listen on its address."""

from __future__ import annotations

import os


class ListenError(Exception):
    """Binding the listening socket failed (address in use, not local, not permitted): one line says so."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        # the OS's own words: asyncio wraps them in a longer message that repeats the address
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"cannot listen on {shown}:{port}: {reason[:1].lower()}{reason[1:]}")
