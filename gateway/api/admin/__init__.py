"""The operator's API under ``/admin/api/`` (admin clients only: ``Route.admin``), one module per concern."""
