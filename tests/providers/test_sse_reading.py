"""The event parser: the data of each complete event (any field layout, CRLF or LF), and the unfinished rest."""

from __future__ import annotations

from providers.transport import sse


def test_simple_events_and_the_rest():
    assert sse._events(b'data: {"a":1}\n\ndata: [DONE]\n\ndata: {"b"') == ([b'{"a":1}', b"[DONE]"], b'data: {"b"')
    assert sse._events(b"data: x\n\n: ping\n\ndata:y\n\n") == ([b"x", b"y"], b"")
    assert sse._events(b"data: x\r\n\r\n") == ([b"x"], b"")


def test_other_fields_several_data_lines_and_empty_events():
    text = b"event: e\ndata: a\ndata: b\n\nid: 3\n\ndata: \n\n\n\ndata:  two\n\ndata: part"
    assert sse._events(text) == ([b"a\nb", b"", b" two"], b"data: part")
