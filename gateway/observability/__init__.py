"""What the gateway tells its operator: everything known about one request (``exchange``), and what
happens to it once answered (``observer``): Prometheus ``metrics``, the JSON ``accesslog`` and the
``usage`` records (SQLite, written off the request path)."""
