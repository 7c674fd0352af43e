"""LocalRouter Gateway: an OpenAI-compatible LLM gateway.

The map, top down: ``cli`` (the ``localrouter`` command) -> ``server`` / ``workers`` (processes,
sockets, graceful end: ``connection``, ``shutdown``, ``listen``) -> ``app`` (wiring only) -> ``api`` (the
endpoints) -> ``routing`` (model -> targets, fallback, breaker) -> the adapters in the ``providers``
package; beside them ``auth``, ``limits``, ``observability``; under everything ``config``, ``errors``,
``jsonx``. ``runtime`` is everything built from one config (reloaded whole); ``keys`` the typed keys
of the app and its requests.
"""

__version__ = "0.1.0"
