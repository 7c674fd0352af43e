"""The HTTP API: the route table (``routes``: each endpoint's method, path, handler and label, and whether
it is public or an inference endpoint; every layer reads it), one module per endpoint family
(``inference``, ``messages``: Anthropic's Messages API, ``responses``: OpenAI's Responses API,
``models``, ``health``, ``metrics``, ``generation``, ``oauth``, ``openapi``), what they
share (``answers``), the documented schemas (``schemas``) and the request checks derived from them
(``validation``), and the Server-Sent Events writer that relays streams to clients (``events``)."""
