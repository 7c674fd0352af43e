"""The W3C ``traceparent`` of the upstream attempt under way, which its POST carries (``http``).

Set around each attempt by the gateway's tracing (``gateway.observability.tracing``) and only when
tracing is on. A context variable, not a parameter: the adapters between the fallback loop and the
POST stay as they are, and each request's task sees its own value (None: send no header).
"""

from __future__ import annotations

from contextvars import ContextVar

TRACEPARENT: ContextVar[str | None] = ContextVar("localrouter_traceparent", default=None)
