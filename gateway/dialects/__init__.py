"""Dialects: the wire formats a client may speak other than chat completions, and their translation to
and from the chat format the fallback chain runs on. Pure: no aiohttp, no I/O, nothing from the
layers that run a request; the endpoints call them.

``messages_request`` (Anthropic's Messages request as a chat body, and the count_tokens estimate) and
``messages_reply`` (a chat answer or stream as Anthropic's message or events, errors in Anthropic's
shape); ``openai_responses`` (OpenAI's Responses request, answer and event stream). Anthropic's own
upstreams get a Messages body untranslated: see
``providers.anthropic``.
"""
