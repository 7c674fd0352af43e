"""Every endpoint: method, path, handler. Each answers at the root and under ``/v1``."""

from __future__ import annotations

from gateway.api import generation, health, inference, metrics, models, oauth, openapi

ROUTES = (
    ("GET", "/health", health.health),
    ("GET", "/openapi.json", openapi.openapi),
    ("GET", "/models", models.models),
    ("GET", "/models/{id:.+}", models.model),  # ids hold a '/'
    ("POST", "/chat/completions", inference.chat_completions),
    ("POST", "/completions", inference.completions),
    ("POST", "/embeddings", inference.embeddings),
    ("GET", "/metrics", metrics.metrics),
    ("GET", "/generation", generation.generation),
    ("POST", "/oauth/token", oauth.token),
)
