"""The event parser: the data of each complete event (any field layout, CRLF or LF), and the unfinished rest;
its fast path (a read made only of one-line ``data:`` events) gives exactly what the general block-by-block
parser gives, for any mix of event shapes cut at any byte."""

from __future__ import annotations

import random

from providers.transport import sse

PIECES = [
    b'data: {"a": 1}\n\n',
    b"data: [DONE]\n\n",
    b": keep-alive\n\n",
    b"data:x\n\n",
    b"data: a\ndata: b\n\n",
    b"event: e\ndata: z\n\n",
    b"data: \n\n",
    b"data: q\r\n\r\n",
    b"\n\n",
    b"data: part",
    b"id: 3\n\n",
    b"data:  two spaces\n\n",
    b"data: \xe2\x82\xac\n\n",
    b'data: {"s": "data: \\n\\n"}\n\n',
]


def _general(text: bytes) -> tuple[list[bytes], bytes]:
    *blocks, rest = sse._blocks(text)
    return [d for d in map(sse._data, blocks) if d is not None], rest


def test_fast_path_equals_the_general_parser():
    rng = random.Random(7)
    fast = 0
    for _ in range(5000):
        text = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
        for t in (text, text[: rng.randint(0, len(text))]):
            assert sse._events(t) == _general(t), t
            complete = t[: t.rfind(b"\n\n") + 2]
            fast += complete.startswith(b"data: ") and complete.count(b"\n") == 2 * complete.count(b"data: ")
    assert fast > 500  # the fast path was taken often, not only the fallback


def test_simple_events_and_the_rest():
    assert sse._events(b'data: {"a":1}\n\ndata: [DONE]\n\ndata: {"b"') == ([b'{"a":1}', b"[DONE]"], b'data: {"b"')
    assert sse._events(b"data: x\n\n: ping\n\ndata:y\n\n") == ([b"x", b"y"], b"")
    assert sse._events(b"data: x\r\n\r\n") == ([b"x"], b"")


def test_other_fields_several_data_lines_and_empty_events():
    text = b"event: e\ndata: a\ndata: b\n\nid: 3\n\ndata: \n\n\n\ndata:  two\n\ndata: part"
    assert sse._events(text) == ([b"a\nb", b"", b" two"], b"data: part")
