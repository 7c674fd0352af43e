"""The firewall: per strategy, rules that allow, hold for an admin's decision (ask) or deny what a request
would reach (a model, an MCP item), and a scan of every prompt for secrets before it leaves.

``rules`` (a strategy's rules applied to a request), ``approvals`` (held requests and decisions, in memory or
Redis), ``secrets`` (the detector, over detect-secrets), ``guard`` (the :class:`Firewall` a process runs)."""

from gateway.firewall.approvals import DECISIONS, Approval, Decision
from gateway.firewall.guard import APPROVALS_PAGE, Firewall, FirewallDenied, FirewallUnavailable

__all__ = ["APPROVALS_PAGE", "DECISIONS", "Approval", "Decision", "Firewall", "FirewallDenied", "FirewallUnavailable"]
