"""The operator's JSON API under ``/admin/api/`` (issue 19; the operator page at ``/ui/`` is built on it):
one module per concern. Every endpoint but login and logout is for admin clients only (the route table's
``admin``), who call it with their secret or an access token as a Bearer, or with the page's session
cookie (gateway.api.admin.session). Numbers come from the shared usage store and the metrics summed over
every worker (and, with Redis, every replica: gateway.observability.replicas), so any process answers for
the whole deployment."""

from __future__ import annotations

from gateway.api.admin import approvals, audit, clients, overview, providers, requests, session, usage
from gateway.endpoints import Route

_API = "/admin/api"
ROUTES = (
    Route("POST", f"{_API}/login", session.login, "admin", public=True),  # the secret is in the body
    Route("POST", f"{_API}/logout", session.logout, "admin", public=True),  # checks its cookie itself
    Route("GET", f"{_API}/session", session.session, "admin", admin=True, anonymous=True),
    Route("GET", f"{_API}/overview", overview.overview, "admin", admin=True),
    Route("GET", f"{_API}/clients", clients.clients, "admin", admin=True),
    Route("POST", f"{_API}/clients/{{name}}/suspend", clients.suspend, "admin", admin=True),
    Route("POST", f"{_API}/clients/{{name}}/resume", clients.resume, "admin", admin=True),
    Route("GET", f"{_API}/providers", providers.providers, "admin", admin=True),
    Route("POST", f"{_API}/targets/{{target:.+}}/reset", providers.reset, "admin", admin=True),  # ids hold a '/'
    Route("GET", f"{_API}/usage", usage.usage, "admin", admin=True),
    Route("GET", f"{_API}/requests", requests.requests, "admin", admin=True),
    Route("GET", f"{_API}/requests/{{id}}", requests.one, "admin", admin=True),
    Route("GET", f"{_API}/audit", audit.audit, "admin", admin=True),
    Route("GET", f"{_API}/approvals", approvals.pending, "admin", admin=True),
    Route("POST", f"{_API}/approvals/{{id}}", approvals.decide, "admin", admin=True),
)
"""The admin API's routes (in the route table, gateway.api.routes)."""
