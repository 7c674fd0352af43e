"""Prompt-cache prices: ``prices`` entries may carry ``cache_read_per_1m`` / ``cache_write_per_1m``, and
an answer's cost counts its cached input tokens at them (Anthropic's ``cache_read_input_tokens`` /
``cache_creation_input_tokens``, OpenAI's ``prompt_tokens_details.cached_tokens``)."""

from __future__ import annotations

import pytest

from gateway.config import Price
from gateway.limits.limiter import cost_usd
from providers.anthropic import messages_usage
from tests.gateway.test_config import GOOD, parse, problems

# USD per million tokens, Anthropic-like: a cache read costs a tenth of input, a write a quarter more
CACHED = Price(input_per_1m=3.0, output_per_1m=15.0, cache_read_per_1m=0.3, cache_write_per_1m=3.75)
PLAIN = Price(input_per_1m=3.0, output_per_1m=15.0)


def test_without_cache_tokens_nothing_changes():
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 100_000}
    assert cost_usd(usage, CACHED) == pytest.approx(3.0 + 1.5)
    assert cost_usd(usage, PLAIN) == pytest.approx(3.0 + 1.5)
    assert cost_usd(usage, None) is None


def test_anthropic_cache_reads_and_writes_cost_their_prices():
    # 100k fresh input, 200k written to the cache, 700k read from it, 10k out
    usage = messages_usage(
        {
            "input_tokens": 100_000,
            "cache_creation_input_tokens": 200_000,
            "cache_read_input_tokens": 700_000,
            "output_tokens": 10_000,
        }
    )
    assert usage["prompt_tokens"] == 1_000_000
    assert cost_usd(usage, CACHED) == pytest.approx(0.1 * 3.0 + 0.2 * 3.75 + 0.7 * 0.3 + 0.01 * 15.0)
    # without cache prices, cached tokens are input tokens
    assert cost_usd(usage, PLAIN) == pytest.approx(1.0 * 3.0 + 0.01 * 15.0)
    read_only = Price(input_per_1m=3.0, output_per_1m=15.0, cache_read_per_1m=0.3)
    assert cost_usd(usage, read_only) == pytest.approx(0.3 * 3.0 + 0.7 * 0.3 + 0.01 * 15.0)


def test_openai_cached_tokens_cost_the_cache_read_price():
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 600_000}}
    assert cost_usd(usage, CACHED) == pytest.approx(0.4 * 3.0 + 0.6 * 0.3)


def test_cache_counts_beyond_the_prompt_are_capped_by_it():
    usage = {"prompt_tokens": 100, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 50}
    assert cost_usd(usage, CACHED) == pytest.approx(100 * 0.3 / 1_000_000)


def test_prices_read_the_cache_keys():
    text = GOOD.replace(
        "    timeouts: {connect: 3, first_byte: 30}\n",
        "    timeouts: {connect: 3, first_byte: 30}\n"
        "    prices:\n"
        "      gpt-4o-mini: {input_per_1m: 3, output_per_1m: 15, cache_read_per_1m: 0.3, cache_write_per_1m: 3.75}\n"
        "      text-embedding-3-small: {input_per_1m: 0.02, output_per_1m: 0}\n",
    )
    prices = parse(text).providers[0].prices
    assert prices["gpt-4o-mini"] == CACHED
    assert prices["text-embedding-3-small"] == Price(0.02, 0.0)
    bad = text.replace("cache_read_per_1m: 0.3", "cache_read_per_1m: -1").replace(
        "cache_write_per_1m", "cache_wirte_per_1m"
    )
    assert set(problems(bad)) >= {
        "providers[0].prices.gpt-4o-mini.cache_read_per_1m: must be >= 0",
        "providers[0].prices.gpt-4o-mini.cache_wirte_per_1m: unknown key",
    }
