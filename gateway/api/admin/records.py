"""Reading the usage store from a handler: in a thread (a disk read or a database round trip must never
stall the event loop), and a store that cannot be reached is a 503 that says so."""

from __future__ import annotations

import logging
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


UNAVAILABLE = "Usage records cannot be reached now; try again later."
OFF = "Usage records are off (usage.path: null): nothing is recorded, so there is nothing to show."


def enabled(request: web.Request) -> bool:
    """Whether usage records are kept (an answer says so: without them, its numbers are not zeros)."""
    return request.app[OBSERVER].usage is not None


async def read(request: web.Request, query: Callable[[UsageStore], T]) -> T | None:
    """``query`` run on the usage store; None when usage records are off (``usage.path: null``); a 503
    when the store cannot be reached."""
    writer = request.app[OBSERVER].usage
    if writer is None:
        return None
    try:
        return await writer.read(query)
    except StoreError as exc:
        log.warning("usage records not read for the admin API: %s", exc)
        raise StoreUnavailable(UNAVAILABLE) from exc


async def read_or_note(request: web.Request, query: Callable[[UsageStore], T]) -> tuple[T | None, str | None]:
    """As :func:`read`, for a view whose actions need no records: (None, why) when the store cannot be
    reached, so the view still answers, with the numbers it would have read null."""
    try:
        return await read(request, query), None
    except StoreUnavailable as exc:
        return None, exc.message


def audit(request: web.Request, action: str, subject: str, client: str | None = None) -> None:
    """Record an operator's action (who, what, when) beside the usage records."""
    actor = request[PRINCIPAL].client.name
    log.info("operator %s: %s %s", actor, action, subject)
    writer = request.app[OBSERVER].usage
    if writer is not None:
        writer.add_audit(AuditRecord(uuid.uuid4().hex, time.time(), "operator", actor, client, subject, action))
