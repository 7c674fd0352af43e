"""The request middlewares, outermost first: errors -> auth -> permissions (-> rate limit)."""
