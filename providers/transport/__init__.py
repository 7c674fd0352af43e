"""Talking to upstreams over HTTP: the calls and where failures are classified (``http``), time limits
of calls in flight (``deadlines``), reading event streams (``sse``: Server-Sent Events and NDJSON),
model lists (``listing``), what a call needs of its provider (``caller``), and the ``traceparent`` an
attempt sends when traced (``tracecontext``)."""
