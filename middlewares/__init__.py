"""The request middlewares, outermost first: observe (finds the request's Route in the route table, once)
-> errors -> gate (pin the runtime -> security -> auth -> rate limit -> body -> permissions, as plain
checks)."""
