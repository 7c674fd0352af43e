"""JSON in and out: orjson on the hot path, the standard library for what orjson refuses.

orjson turns integers beyond 64 bits into floats (and refuses to write them). A client's request must
pass through untouched all the same, so :func:`loads_exact` sends documents with 19 or more digits in
a row (-9223372036854775809 has 19) down the standard library's slower, exact path. Upstream
answers use :func:`loads`: OpenAI-shaped answers carry no such integers, and an embedding answer's
digits would make the check cost more than the parse. Both refuse documents nested deeper than
:data:`MAX_DEPTH`, so that nothing the gateway read fails to be written again.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19

#: The deepest nesting read from anyone (a client's request, an upstream's answer or stream event):
#: what orjson writes (it reads four times deeper). Deeper than any real request, and what was read can
#: always be written again: by orjson, or by the standard library for the few levels a translation
#: wraps around a client's values (its recursion would fail far deeper).
MAX_DEPTH = 254


class TooDeep(ValueError):
    """A JSON document nested deeper than :data:`MAX_DEPTH`."""


def loads(data: bytes | str) -> Any:
    """Parse JSON fast; ValueError when it is not JSON (NaN and Infinity included), :class:`TooDeep`
    when it nests deeper than :data:`MAX_DEPTH`."""
    doc = orjson.loads(data)
    if len(data) > 2 * MAX_DEPTH:  # each level takes two bytes: a shorter text cannot be too deep
        _check_depth(data, doc)
    return doc


def loads_exact(data: bytes) -> Any:
    """Like :func:`loads`, keeping integers of any size exact."""
    if _LONG_NUMBER not in data.translate(_DIGITS_TO_ZERO):
        return loads(data)
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise TooDeep(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    _check_depth(data, doc)
    return doc


def _check_depth(data: bytes | str, doc: Any) -> None:
    """Raise TooDeep if ``doc`` (parsed from ``data``) nests deeper than MAX_DEPTH. Cheap first: a level
    opens with a bracket, so a text with few brackets cannot be deep; then orjson writing ``doc`` in one
    C pass shows it is not; only what orjson refuses (too deep, or an integer beyond 64 bits) is walked."""
    brackets = data.count("[") + data.count("{") if isinstance(data, str) else data.count(b"[") + data.count(b"{")
    if brackets <= MAX_DEPTH:
        return
    try:
        orjson.dumps(doc)
        return
    except TypeError:
        pass
    if _deeper_than(doc, MAX_DEPTH):
        raise TooDeep(f"JSON nested more than {MAX_DEPTH} levels deep")


def _deeper_than(doc: Any, limit: int) -> bool:
    todo = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while todo:
        node, level = todo.pop()
        if level > limit:
            return True
        todo.extend(
            (child, level + 1)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        )
    return False


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def dumps_all(objs: list[Any]) -> list[bytes]:
    """:func:`dumps` of each, with one call into orjson per item and no Python frame around it."""
    try:
        return list(map(orjson.dumps, objs))
    except TypeError:
        return list(map(dumps, objs))


class Answer(dict[str, Any]):
    """An upstream's JSON object as parsed, with the bytes it came as, which :func:`encode_answer` relays
    instead of encoding the document again: writing an embedding's floats costs a good part of what
    relaying the whole answer does (bench/NOTES.md has the side-by-side figures).

    Immutable, so that the bytes always say what the document says: an edit raises ``TypeError``, and
    the one change the gateway makes, the model, goes through :meth:`with_model`, which makes it in both.
    """

    __slots__ = ("raw",)

    def __init__(self, doc: dict[str, Any], raw: bytes) -> None:
        super().__init__(doc)
        self.raw = raw

    def with_model(self, model: str) -> dict[str, Any]:
        """This answer naming ``model``: an Answer when its bytes can say so with certainty (see
        :func:`swap_model`), else a plain dict, which is encoded again."""
        doc = {**self, "model": model}
        raw = swap_model(self.raw, self.get("model"), model)
        return doc if raw is None else Answer(doc, raw)

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("an Answer is immutable: use with_model()")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


#: below this, encoding an answer again costs less than finding its model in the bytes (a chat answer
#: is far below it; an embedding's 1536 floats are ~30 KB)
RELAY_MIN_BYTES = 4096


def answer(doc: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """The upstream's answer ``doc`` parsed from ``raw``: an :class:`Answer` when relaying its bytes pays."""
    return Answer(doc, raw) if len(raw) >= RELAY_MIN_BYTES else doc


def with_model(doc: dict[str, Any], model: str) -> dict[str, Any]:
    """An upstream's answer (from :func:`answer`, or built by a translation) naming ``model``, as a new
    value: the answer itself is left as it was."""
    return doc.with_model(model) if isinstance(doc, Answer) else {**doc, "model": model}


def encode_answer(doc: dict[str, Any]) -> bytes:
    """An answer as JSON: an :class:`Answer`'s own bytes (they always match it), anything else encoded."""
    return doc.raw if isinstance(doc, Answer) else dumps(doc)


_MODEL_KEY = b'"model"'


def swap_model(raw: bytes, old: Any, new: Any) -> bytes | None:
    """``raw`` with its ``"model"`` value ``old`` replaced by ``new``, or None when that cannot be done
    with certainty (then the caller encodes the document again).

    Certain means: the document has no escape at all (so every key in it is written literally), the
    seven bytes ``"model"`` appear exactly once, followed by a colon (a quote inside a string is always
    escaped, so this can only be a key: the top-level one, as ``old`` says there is one), then by ``old``
    exactly as orjson writes it. An answer with text in it usually has escapes (``\\n``) and is encoded
    again; it is small. The large ones, embeddings, have none.
    """
    if not isinstance(old, str) or not isinstance(new, str) or b"\\" in raw:
        return None
    at = raw.find(_MODEL_KEY)
    if at < 0 or raw.find(_MODEL_KEY, at + len(_MODEL_KEY)) >= 0:
        return None
    i = at + len(_MODEL_KEY)
    n = len(raw)
    while i < n and raw[i] in b" \t\r\n":
        i += 1
    if i >= n or raw[i] != 0x3A:  # ':'
        return None
    i += 1
    while i < n and raw[i] in b" \t\r\n":
        i += 1
    value = orjson.dumps(old)
    if not raw.startswith(value, i):
        return None
    return raw[:i] + orjson.dumps(new) + raw[i + len(value) :]
