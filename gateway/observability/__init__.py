"""What the gateway tells its operator: everything known about one request (``exchange``), and what
happens to it once answered (``observer``): Prometheus ``metrics``, the JSON ``accesslog`` and the
``usage`` records (SQLite, written off the request path). Beside them in the same database, the
``responses_store``: the Responses endpoint's stored responses, which ``previous_response_id`` continues.
``tracing``: OpenTelemetry spans of each request and its upstream attempts, sent over OTLP."""
