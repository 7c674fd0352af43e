"""The fast fake upstream for the throughput runs: nginx returning fixed OpenAI answers."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

MESSAGES = [
    {"role": "system", "content": "You are a concise assistant for an engineering team."},
    {"role": "user", "content": "Summarise the trade-offs of connection pooling in two sentences."},
    {"role": "assistant", "content": "Pooling saves handshakes but holds sockets; size it to peak concurrency."},
    {"role": "user", "content": "And for streaming responses?"},
]
EMBEDDING_DIMENSIONS = 1536  # text-embedding-3-small
STREAM_WORDS = ["Streams", " hold", " a", " connection", " for", " their", " whole", " life."]


def request_body(kind: str, prefix: str) -> str:
    """The client's request: provider/model ids through the gateway, upstream names otherwise."""
    gw = prefix == "gw"
    if kind == "embeddings":
        model = "openai/text-embedding-3-small" if gw else "text-embedding-3-small"
        return json.dumps({"model": model, "input": "The quick brown fox jumps over the lazy dog."})
    model = ("streamer/gpt-4o-mini" if kind == "stream" else "openai/gpt-4o-mini") if gw else "gpt-4o-mini"
    body = {"model": model, "messages": MESSAGES, "temperature": 0.2, "max_tokens": 256}
    if kind == "stream":
        body["stream"] = True
    return json.dumps(body)


def path(kind: str, prefix: str) -> str:
    if kind == "embeddings":
        return "/v1/embeddings"
    return "/stream/v1/chat/completions" if kind == "stream" and prefix != "gw" else "/v1/chat/completions"


def _chat() -> str:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1732000000,
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Pooling trades sockets for "
                        "latency; streams pin a connection for their whole duration.",
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 61, "completion_tokens": 17, "total_tokens": 78},
        }
    )


def _embeddings() -> str:
    vector = [round(((i * 7919) % 2000 - 1000) / 31337.0, 9) for i in range(EMBEDDING_DIMENSIONS)]
    return json.dumps(
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "usage": {"prompt_tokens": 10, "total_tokens": 10},
        }
    )


def _stream() -> str:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1732000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_bench",
    }
    deltas = [{"role": "assistant", "content": ""}] + [{"content": w} for w in STREAM_WORDS]
    events = [{**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]} for d in deltas]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 61, "completion_tokens": 8, "total_tokens": 69}})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def _models() -> str:
    return json.dumps(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1732000000, "owned_by": "bench"}
                for m in ("gpt-4o-mini", "text-embedding-3-small")
            ],
        }
    )


FILES = {"chat.json": _chat, "embeddings.json": _embeddings, "stream.sse": _stream, "models.json": _models}


def config(workdir: Path, port: int) -> str:
    """Bodies are static files: ``error_page 405 =200`` turns the POST into a GET of the file."""
    workdir.chmod(0o755)  # nginx's workers run as nobody and must read the files
    (workdir / "files").mkdir(exist_ok=True)
    for name, make in FILES.items():
        (workdir / "files" / name).write_text(make())
    routes = {
        "/v1/models": "models.json",
        "/v1/chat/completions": "chat.json",
        "/v1/embeddings": "embeddings.json",
        "/stream/v1/chat/completions": "stream.sse",
    }
    locations = "\n".join(
        f"    location = {route} {{ error_page 405 =200 /files/{name}; return 405; }}" for route, name in routes.items()
    )
    return f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  types {{ application/json json; text/event-stream sse; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
{locations}
    location /files/ {{ internal; root {workdir}; etag off; }}
  }}
}}
"""


def start(workdir: Path, port: int, cpu: str) -> subprocess.Popen[bytes]:
    conf = workdir / "nginx.conf"
    conf.write_text(config(workdir, port))
    proc = subprocess.Popen(
        ["taskset", "-c", cpu, "nginx", "-p", str(workdir), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    log = workdir / "nginx-error.log"
    raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else 'no error log'}")
