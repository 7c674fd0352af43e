"""Who is calling: client secrets by their SHA-256 (``clients``) and signed OAuth access tokens
(``tokens``). Authorization (may this client use that model) is the router's policy."""
