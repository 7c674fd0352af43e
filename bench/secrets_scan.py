"""``python -m bench.secrets_scan``: what the firewall's secrets scan costs per request, in CPU time, on the
bench's own chat request (the body ``wrk`` sends), on a long agent-style prompt seen for the first time,
and on the same prompt again (a conversation resent the next turn). A few seconds; no server."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench import upstream_nginx
from gateway.firewall.secrets import Detector, Scan

ROUNDS = 2000
PROMPT_CHARS = 32 * 1024  # an agent's system prompt and conversation: the README's first 32 KiB


def cost_us(body: dict, rounds: int, detector: Detector | None) -> float:
    """Mean CPU microseconds of one scan of ``body``, parsed anew each round as a request's is (``detector``:
    one kept across rounds, remembering clean texts; None: a new one each round, which has seen nothing)."""
    raw = json.dumps(body).encode()
    started = time.process_time()
    for _ in range(rounds):
        Scan(detector or Detector(), redact=False).body(json.loads(raw))
    scanned = time.process_time() - started
    started = time.process_time()
    for _ in range(rounds):  # the same work without the scan
        Scan(detector or Detector(), redact=False).body(json.loads(raw), ())
    return (scanned - (time.process_time() - started)) / rounds * 1e6


def main() -> None:
    chat = json.loads(upstream_nginx.request_body("chat", "gw"))
    readme = (Path(__file__).parents[1] / "README.md").read_text()[:PROMPT_CHARS]
    long_prompt = {"messages": [{"role": "system", "content": readme}, *chat["messages"]]}
    kept = Detector()
    print(f"the bench's chat request ({len(json.dumps(chat))} bytes): {cost_us(chat, ROUNDS, kept):.1f} us")
    print(f"with a {PROMPT_CHARS // 1024} KiB system prompt, first seen: {cost_us(long_prompt, 20, None):.0f} us")
    print(f"the same again, remembered clean: {cost_us(long_prompt, 200, kept):.1f} us")


if __name__ == "__main__":
    main()
