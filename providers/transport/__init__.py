"""Talking to upstreams over HTTP: the calls and where failures are classified (``http``), time limits
of calls in flight (``deadlines``), reading event streams (``sse``: Server-Sent Events and NDJSON), and
model lists (``listing``), and the ``traceparent`` an attempt sends when traced (``tracecontext``)."""
