"""An upstream's answer relayed as the bytes it came as (``jsonx.Answer``) says exactly what encoding it
again says, whatever its shape and spelling; and an Answer cannot be edited behind its bytes' back."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from gateway import jsonx

TEXTS = [
    "m",
    "gpt-4o",
    "a/b",
    'say "hi"',
    "line\nbreak",
    "tab\t",
    "\u00e9t\u00e9",
    "\U0001f600",
    "model",
    "back\\slash",
]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(8 if depth < 3 else 4)
    if pick == 0:
        return rng.choice(TEXTS)
    if pick == 1:
        return rng.choice([0, -7, 2**53, rng.random(), 1e-05, -2.5e3, 0.1])
    if pick == 2:
        return rng.choice([None, True, False])
    if pick == 3:
        return [rng.uniform(-1, 1) for _ in range(rng.randrange(1, 40))]
    if pick in (4, 5):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(TEXTS + ["model", "data"]): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _document(rng: random.Random) -> dict[str, Any]:
    model = rng.choice(TEXTS)
    doc = {rng.choice(TEXTS[:3] + ["id", "object", "usage"]): _value(rng, 1) for _ in range(rng.randrange(4))}
    if rng.random() < 0.2:  # the same model named deeper, ahead of the top-level one
        doc["tool"] = {"model": model}
    if rng.random() < 0.9:
        doc["model"] = model
    if rng.random() < 0.7:  # as large as an embedding: the size where the bytes are relayed
        doc["data"] = [{"object": "embedding", "index": 0, "embedding": [rng.uniform(-1, 1) for _ in range(300)]}]
    return doc


def _spellings(doc: dict[str, Any]) -> list[bytes]:
    return [
        orjson.dumps(doc),
        json.dumps(doc).encode(),
        json.dumps(doc, indent=1).encode(),
        json.dumps(doc, ensure_ascii=False, separators=(",", " :\t")).encode(),
    ]


def test_the_relayed_bytes_say_what_encoding_again_says():
    rng = random.Random(16)
    relayed = 0
    for _ in range(400):
        doc = _document(rng)
        for raw in _spellings(doc):
            parsed = jsonx.loads(raw)
            upstream = jsonx.answer(parsed, raw)
            served = jsonx.with_model(upstream, "prov/served")
            plain = jsonx.dumps({**parsed, "model": "prov/served"})
            assert json.loads(jsonx.encode_answer(served)) == json.loads(plain), raw[:200]
            assert upstream == parsed and getattr(upstream, "raw", raw) == raw  # the upstream's answer is untouched
            relayed += isinstance(served, jsonx.Answer)
    assert relayed > 150  # the byte path was taken often, not only encoding again


@pytest.mark.parametrize(
    "edit",
    [
        lambda a: a.__setitem__("usage", {}),
        lambda a: a.__delitem__("model"),
        lambda a: a.update(model="x"),
        lambda a: a.pop("model"),
        lambda a: a.popitem(),
        lambda a: a.setdefault("extra", 1),
        lambda a: a.clear(),
        lambda a: a.__ior__({"model": "x"}),
    ],
)
def test_an_answer_refuses_edits(edit):
    raw = orjson.dumps({"model": "m", "data": [0.5] * 2000})
    answer = jsonx.answer(jsonx.loads(raw), raw)
    assert isinstance(answer, jsonx.Answer)
    with pytest.raises(TypeError, match="with_model"):
        edit(answer)
    assert jsonx.encode_answer(answer) == raw
