"""The registry against the suite that holds each wire format to the one contract: a wire format
added to the registry without a place in ``test_contract`` (and so a fake upstream) fails here."""

from __future__ import annotations

from providers.registry import TYPES
from tests.providers import test_contract


def test_every_wire_format_is_in_the_contract_suite():
    assert sorted(TYPES) == sorted(test_contract.TYPES)
    served = sorted(name for name, f in TYPES.items() if "embeddings" in f.capabilities)
    assert served == sorted(test_contract.EMBEDDING_TYPES)
