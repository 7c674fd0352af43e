"""The request middlewares, outermost first: observe -> errors -> gate (security -> auth -> rate limit ->
permissions, as plain checks)."""
