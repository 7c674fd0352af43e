"""The benchmark harness: ``python -m bench`` (see README, "Performance")."""
