"""Reading the usage store from a handler: in a thread (a disk read or a database round trip must never
stall the event loop), and a store that cannot be reached is a 503 that says so."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from gateway.errors import StoreUnavailable
from gateway.keys import OBSERVER, PRINCIPAL
from gateway.observability.usage import AuditRecord, StoreError, UsageStore

T = TypeVar("T")
log = logging.getLogger("localrouter.admin")


async def read(request: web.Request, query: Callable[[UsageStore], T]) -> T | None:
    """``query`` run on the usage store; None when usage records are off (``usage.path: null``)."""
    writer = request.app[OBSERVER].usage
    if writer is None:
        return None
    try:
        return await asyncio.to_thread(query, writer.store)
    except (StoreError, sqlite3.Error) as exc:
        log.warning("usage records not read for the admin API: %s", exc)
        raise StoreUnavailable("Usage records cannot be reached now; try again later.") from exc


def audit(request: web.Request, action: str, subject: str, client: str | None = None) -> None:
    """Record an operator's action (who, what, when) beside the usage records."""
    actor = request[PRINCIPAL].client.name
    log.info("operator %s: %s %s", actor, action, subject)
    writer = request.app[OBSERVER].usage
    if writer is not None:
        writer.add_audit(AuditRecord(uuid.uuid4().hex, time.time(), "operator", actor, client, subject, action))
