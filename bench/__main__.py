"""``python -m bench``: what the gateway costs per request, measured against its own stack's limit.

1. nginx on 127.0.0.1 serves fixed OpenAI answers (chat, a 10-chunk stream, embeddings);
2. wrk drives, in turn, (a) nginx directly, (b) the bare aiohttp proxy, (c) the gateway with a
   realistic config (several providers, clients and strategies, auth on, fallbacks configured);
3. a second scenario holds 1,000 streams open through the gateway against a slow upstream.
Prints a table and writes ``bench/RESULTS.md``. Needs nginx and wrk (installed with apt if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench import upstream_nginx

HERE = Path(__file__).parent
SECRET = "lr-bench-client-secret-0123456789abcdefghijkl"
KINDS = ("chat", "stream", "embeddings")


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us: float | None = None  # CPU time of the proxy per request (noise-proof, unlike req/s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_tools() -> None:
    missing = [
        pkg
        for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"))
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """A child process listening on ``port``; stopped with SIGTERM."""

    def __init__(self, name: str, argv: list[str], port: int, workdir: Path, cwd: Path = HERE.parent) -> None:
        self.name, self.port = name, port
        self.log = open(workdir / f"{name}.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start; see {self.log.name}")

    def memory_kib(self, field: str) -> int:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the process."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# Two cores: the load (wrk, nginx) on one, the proxy under test alone on the other, so that the
# scheduler does not put them on the same core in some runs and not in others.
LOAD_CPU, PROXY_CPU = "0", "1"


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else argv


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_gateway(workdir: Path, config_text: str, name: str = "gateway", tree: Path = HERE.parent) -> Server:
    """The gateway on ``config_text``, run from the checkout ``tree`` (by default this one)."""
    path = workdir / f"{name}.yaml"
    if "\nusage:" not in config_text:  # usage records in the scratch directory, not the repository
        config_text += f"\nusage: {{path: {workdir / (name + '-usage.db')}}}\n"
    path.write_text(config_text)
    port = free_port()
    return Server(
        name,
        pinned(
            PROXY_CPU, python("-m", "gateway", "serve", "-c", str(path), "--port", str(port), "--log-level", "WARNING")
        ),
        port,
        workdir,
        cwd=tree,  # ``python -m`` imports from the working directory first: the tree's own code runs
    )


def gateway_config(upstream: str, stream_upstream: str) -> str:
    """A realistic config: several providers, strategies and clients; fallbacks; auth on; rate limits,
    metrics, the access log (to a file) and usage records on (see WITHOUT for variants)."""
    from gateway.config import hash_secret

    clients = "\n".join(
        f"  - {{name: user{i}, secret_sha256: {hash_secret(f'lr-bench-user-{i}-0123456789abcdef')}, "
        f"strategy: {('default', 'team', 'interns')[i % 3]}}}"
        for i in range(20)
    )
    return f"""
server: {{host: 127.0.0.1, port: 0}}
providers:
  - {{name: openai, base_url: "{upstream}", api_key: sk-bench, models: [gpt-4o-mini, gpt-4o, text-embedding-3-small],
      prices: {{gpt-4o-mini: {{input_per_1m: 0.15, output_per_1m: 0.6}}}}}}
  - {{name: streamer, base_url: "{stream_upstream}", api_key: sk-bench, models: [gpt-4o-mini],
      prices: {{gpt-4o-mini: {{input_per_1m: 0.15, output_per_1m: 0.6}}}}}}
  - {{name: backup, base_url: "{upstream}", models: [gpt-4o-mini, text-embedding-3-small]}}
  - {{name: groq, base_url: "{upstream}", api_key: gsk-bench, models: [llama-3.1-8b-instant], endpoints: [chat]}}
strategies:
  - name: default
    allow: ["openai/*", "streamer/*", "backup/*", "groq/*"]
    rate_limits:  # never reached here: the cost of checking and counting them is what is measured
      - {{requests: 100000000, per: minute}}
      - {{total_tokens: 10000000000, per: hour}}
      - {{cost_usd: 1000000000, per: day}}
    auto: [openai/gpt-4o-mini, backup/gpt-4o-mini]
    fallbacks:
      openai/gpt-4o-mini: [backup/gpt-4o-mini, groq/llama-3.1-8b-instant]
      streamer/gpt-4o-mini: [backup/gpt-4o-mini]
      openai/text-embedding-3-small: [backup/text-embedding-3-small]
  - {{name: team, allow: ["openai/gpt-4o*", "groq/*"]}}
  - {{name: interns, allow: ["openai/gpt-4o-mini"]}}
clients:
  - {{name: bench, secret: {SECRET}, strategy: default}}
{clients}
"""


QUIET = """
logging: {access: false}
metrics: {enabled: false}
"""

#: gateways with one feature off, to show what each costs: name -> (label, how the config changes)
WITHOUT = {
    "quiet": ("metrics and the access log", lambda cfg: cfg + QUIET),
    "no-usage": ("usage records", lambda cfg: cfg + "\nusage: {path: null}\n"),
    "no-secrets": (
        "the firewall's secrets scan (default log mode)",
        lambda cfg: cfg + '\nfirewall: {secrets: "off"}\n',
    ),
    "no-limits": (
        "rate limits (3 per client, memory state)",
        lambda cfg: re.sub(r"    rate_limits:.*\n(      - .*\n)+", "", cfg),
    ),
    "core": (
        "all four (the core left: auth, routing, fallback, validation)",
        lambda cfg: re.sub(r"    rate_limits:.*\n(      - .*\n)+", "", cfg) + QUIET + "\nusage: {path: null}\n",
    ),
}


def wrk_script(workdir: Path, kind: str, model_prefix: str, auth: bool) -> Path:
    body = upstream_nginx.request_body(kind, model_prefix)
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if auth:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {SECRET}"')
    path = workdir / f"{kind}-{model_prefix or 'direct'}-{auth}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_argv(url: str, script: Path, seconds: int, connections: int) -> list[str]:
    return pinned(LOAD_CPU, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url])


def wrk(url: str, script: Path, seconds: int, connections: int) -> Result:
    out = subprocess.run(wrk_argv(url, script, seconds, connections), capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> Result:
    if "Latency Distribution" not in out or "Requests/sec" not in out:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, errs.groups())) if errs else 0)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99, errors, requests)


def best(runs: list[Result]) -> Result:
    """The least disturbed run (highest req/s, with its own latencies and CPU); errors summed over all.

    The machine is shared: other work only ever slows a run down, so the best run is the closest to
    what the code itself costs.
    """
    top = max(runs, key=lambda r: r.rps)
    return Result(top.rps, top.p50_ms, top.p99_ms, sum(r.errors for r in runs), top.requests, top.cpu_us)


def throughput(
    workdir: Path, seconds: int, warmup: int, connections: int, rounds: int, kinds: tuple[str, ...] = KINDS
) -> tuple[dict, int]:
    nginx_port = free_port()
    nginx = upstream_nginx.start(workdir, nginx_port, LOAD_CPU)
    upstream = f"http://127.0.0.1:{nginx_port}/v1"
    stream_upstream = f"http://127.0.0.1:{nginx_port}/stream/v1"
    results: dict[tuple[str, str], Result] = {}
    try:
        bare_port = free_port()
        bare = Server(
            "bare",
            pinned(
                PROXY_CPU,
                python(
                    "-m", "bench.bare_proxy", "--upstream", f"http://127.0.0.1:{nginx_port}", "--port", str(bare_port)
                ),
            ),
            bare_port,
            workdir,
        )
        gateway = start_gateway(workdir, gateway_config(upstream, stream_upstream))
        targets = {
            "direct": (nginx_port, "", False, None),
            "bare": (bare_port, "", False, bare),
            "gateway": (gateway.port, "gw", True, gateway),
        }
        try:
            for kind in kinds:
                runs: dict[str, list[Result]] = {name: [] for name in targets}
                for _ in range(rounds):  # alternate the targets so that noise falls on all of them
                    for name, (port, prefix, auth, server) in targets.items():
                        script = wrk_script(workdir, kind, prefix, auth)
                        url = f"http://127.0.0.1:{port}{upstream_nginx.path(kind, prefix)}"
                        wrk(url, script, warmup, connections)
                        cpu = server.cpu_seconds() if server else 0.0
                        res = wrk(url, script, seconds, connections)
                        if server:
                            res.cpu_us = (server.cpu_seconds() - cpu) / max(res.requests, 1) * 1e6
                        runs[name].append(res)
                        print(
                            f"  {kind:<10} {name:<8} {res.rps:>9.0f} req/s  p50 {res.p50_ms:6.2f} ms  "
                            f"p99 {res.p99_ms:6.2f} ms  cpu/req {res.cpu_us or 0:6.1f} us  errors {res.errors}",
                            flush=True,
                        )
                for name, done in runs.items():
                    results[(kind, name)] = best(done)
            peak = gateway.memory_kib("VmHWM")
        finally:
            gateway.stop()
            bare.stop()
    finally:
        nginx.terminate()
        nginx.wait()
    return results, peak


def feature_costs(workdir: Path, kinds: tuple[str, ...], rounds: int, seconds: int) -> dict[tuple[str, str], float]:
    """CPU per request of the gateway and of each variant in WITHOUT, all measured at the same time.

    Every variant runs at once on the proxy's core, each driven by its own wrk: whatever else the
    shared machine does falls on all of them alike, which makes differences of a few percent visible
    (run one after the other, the same cell moves by 20-40%). Sharing one core costs each process
    some cache, so absolute figures are higher than in the main table; the shares are what counts.
    Work done by a background thread (the usage records' SQLite writes) suffers most from the
    sharing: its share here is an upper bound.
    Returns the median over ``rounds`` of each (kind, variant)'s microseconds of CPU per request.
    """

    def start(config: str) -> dict[str, Server]:
        servers = {"gateway": start_gateway(workdir, config, "features-gateway")}
        for name, (_, change) in WITHOUT.items():
            servers[name] = start_gateway(workdir, change(config), f"features-{name}")
        return servers

    return side_by_side(workdir, start, kinds, rounds, seconds)


def tree_costs(
    workdir: Path, trees: list[Path], kinds: tuple[str, ...], rounds: int, seconds: int
) -> dict[tuple[str, str], float]:
    """CPU per request of the gateway as each of ``trees`` (checkouts of this repository) has it, all
    measured at the same time as :func:`feature_costs` measures variants: how a change is judged."""

    def start(config: str) -> dict[str, Server]:
        return {str(tree): start_gateway(workdir, config, f"tree-{i}", tree) for i, tree in enumerate(trees)}

    return side_by_side(workdir, start, kinds, rounds, seconds)


def with_cache(config: str) -> str:
    """The realistic config with the response cache on for the bench's client (its strategy, ``default``)."""
    return config.replace("  - name: default\n", "  - name: default\n    cache: true\n", 1)


def cache_costs(workdir: Path, kinds: tuple[str, ...], rounds: int, seconds: int) -> dict[tuple[str, str], float]:
    """CPU per request of the same request answered from the response cache (every one but the first: wrk
    sends one body) against answered by the upstream, both gateways measured at the same time."""

    def start(config: str) -> dict[str, Server]:
        return {
            "plain": start_gateway(workdir, config, "cache-plain"),
            "hit": start_gateway(workdir, with_cache(config), "cache-hit"),
        }

    return side_by_side(workdir, start, kinds, rounds, seconds)


def side_by_side(
    workdir: Path,
    start: Callable[[str], dict[str, Server]],
    kinds: tuple[str, ...],
    rounds: int,
    seconds: int,
) -> dict[tuple[str, str], float]:
    """The median over ``rounds`` of each (kind, server)'s microseconds of CPU per request, the servers
    ``start`` returns for the realistic config all driven at once, each by its own wrk."""
    nginx_port = free_port()
    nginx = upstream_nginx.start(workdir, nginx_port, LOAD_CPU)
    config = gateway_config(f"http://127.0.0.1:{nginx_port}/v1", f"http://127.0.0.1:{nginx_port}/stream/v1")
    servers: dict[str, Server] = {}
    out: dict[tuple[str, str], float] = {}
    try:
        servers = start(config)
        for kind in kinds:
            script = wrk_script(workdir, kind, "gw", True)
            url = upstream_nginx.path(kind, "gw")
            samples: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(rounds):
                for phase in ("warmup", "measure"):
                    cpu = {name: s.cpu_seconds() for name, s in servers.items()}
                    argv = {
                        name: wrk_argv(
                            f"http://127.0.0.1:{s.port}{url}", script, 1 if phase == "warmup" else seconds, 8
                        )
                        for name, s in servers.items()
                    }
                    procs = {name: subprocess.Popen(a, stdout=subprocess.PIPE, text=True) for name, a in argv.items()}
                    for name, proc in procs.items():
                        result = parse_wrk(proc.communicate()[0])
                        if result.errors:
                            raise RuntimeError(f"{result.errors} errors from {name}")
                        done = result.requests
                        if phase == "measure":
                            samples[name].append((servers[name].cpu_seconds() - cpu[name]) / max(done, 1) * 1e6)
            for name, values in samples.items():
                out[(kind, name)] = sorted(values)[len(values) // 2]
            print(
                f"  {kind:<10} "
                + "  ".join(f"{name} {out[(kind, name)]:.0f}" for name in servers)
                + " us of CPU per request",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
        nginx.terminate()
        nginx.wait()
    return out


async def _one_stream(http: aiohttp.ClientSession, url: str) -> tuple[bool, int]:
    body = {"model": "slow/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunks, done = 0, False
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {SECRET}"}) as resp:
        if resp.status != 200:
            return False, 0
        async for line in resp.content:
            if line.startswith(b"data: [DONE]"):
                done = True
            elif line.startswith(b"data: {") and b'"error"' not in line[:20]:
                chunks += 1
    return done, chunks


async def _hold_streams(url: str, count: int, gateway: Server) -> dict:
    peak_rss = 0

    async def sample() -> None:
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, gateway.memory_kib("VmRSS"))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as http:
        outcomes = await asyncio.gather(*(_one_stream(http, url) for _ in range(count)), return_exceptions=True)
    elapsed = time.monotonic() - started
    sampler.cancel()
    completed = [o for o in outcomes if isinstance(o, tuple) and o[0]]
    return {
        "streams": count,
        "completed": len(completed),
        "elapsed_s": elapsed,
        "chunks_min": min((o[1] for o in completed), default=0),
        "peak_rss_kib": peak_rss,
        "failures": sorted({repr(o)[:120] for o in outcomes if not (isinstance(o, tuple) and o[0])})[:5],
    }


def concurrent_streams(workdir: Path, count: int, chunks: int, interval: float) -> dict:
    slow_port = free_port()
    slow = Server(
        "slow",
        pinned(
            LOAD_CPU,
            python(
                "-m",
                "bench.slow_upstream",
                "--port",
                str(slow_port),
                "--chunks",
                str(chunks),
                "--interval",
                str(interval),
            ),
        ),
        slow_port,
        workdir,
    )
    config = gateway_config(f"http://127.0.0.1:{slow_port}/v1", f"http://127.0.0.1:{slow_port}/v1")
    config = config.replace(
        "providers:\n",
        f'providers:\n  - {{name: slow, base_url: "http://127.0.0.1:{slow_port}/v1", models: [gpt-4o-mini]}}\n',
        1,
    )
    config = config.replace('allow: ["openai/*",', 'allow: ["slow/*", "openai/*",', 1)
    gateway = start_gateway(workdir, config, "gateway-streams")
    try:
        url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"
        result = asyncio.run(_hold_streams(url, count, gateway))
        result["expected_chunks"] = chunks + 2
    finally:
        gateway.stop()
        slow.stop()
    return result


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Linux {platform.release()}, Python {platform.python_version()}"


def report(results: dict, peak_kib: int, streams: dict | None, features: dict | None, args: argparse.Namespace) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- command: `python -m bench --seconds {args.seconds} --rounds {args.rounds} --connections {args.connections} "
        f"--feature-rounds {args.feature_rounds}`",
        "- placement: wrk and nginx pinned to CPU 0, the proxy under test alone on CPU 1 (taskset)",
        f"- load: wrk, 1 thread, {args.connections} connections, {args.seconds} s per run after {args.warmup} s "
        f"warm-up, {args.rounds} rounds alternating direct, bare proxy and gateway; each cell is its least disturbed "
        "round (highest req/s); upstream: nginx returning fixed bodies; everything on this one machine",
        "",
        "`cpu us/req` is the proxy process's own CPU time per request, the figure least moved by the",
        "other processes sharing the machine; the ratios are from this one run of the harness.",
        "",
        "| endpoint | target | req/s | p50 ms | p99 ms | cpu us/req | errors | gateway/bare req/s |"
        " gateway/bare p50 | bare/gateway cpu | gateway/direct req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in (k for k in KINDS if (k, "gateway") in results):
        direct, bare, gw = (results[(kind, n)] for n in ("direct", "bare", "gateway"))
        for name, r in (("direct", direct), ("bare proxy", bare), ("gateway", gw)):
            ratios = (
                f"{gw.rps / bare.rps:.2f} | {gw.p50_ms / bare.p50_ms:.2f} | "
                f"{(bare.cpu_us or 0) / (gw.cpu_us or 1):.2f} | {gw.rps / direct.rps:.2f}"
                if name == "gateway"
                else " | | | "
            )
            cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
            lines.append(
                f"| {kind} | {name} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {cpu} | {r.errors} | {ratios} |"
            )
    if features:
        shown = [k for k in KINDS if (k, "gateway") in features]
        lines += [
            "",
            "What each feature costs: the gateway with that feature off, all variants measured at the same "
            "time (see `feature_costs` in bench/__main__.py); the share of throughput the feature takes, "
            "from CPU per request (throughput here is CPU-bound), and the CPU it adds:",
            "",
            "| feature | " + " | ".join(shown) + " |",
            "|---|" + "---:|" * len(shown),
        ]
        for name, (label, _) in WITHOUT.items():
            cells = []
            for kind in shown:
                on, off = features[(kind, "gateway")], features[(kind, name)]
                cells.append(f"{(1 - off / on) * 100:.1f}% ({on - off:.0f} us)")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "(CPU per request of the whole gateway in that measurement: "
            + "; ".join(f"{kind} {features[(kind, 'gateway')]:.0f} us" for kind in shown)
            + ". Five processes share one core "
            "there, which costs each some cache: the figures are higher than in the table above, and the "
            "usage records, written by a background thread, suffer most from the sharing, so their share is "
            "an upper bound.)",
        ]
    lines += ["", f"Gateway peak RSS over the whole throughput run: {peak_kib / 1024:.1f} MiB.", ""]
    if streams:
        lines += [
            f"## {streams['streams']} concurrent streams",
            "",
            f"Upstream: {args.stream_chunks} chunks, one every {args.stream_interval * 1000:.0f} ms, per stream.",
            "",
            f"- completed with `[DONE]`: {streams['completed']} / {streams['streams']}"
            f" (fewest chunks in a completed stream: {streams['chunks_min']}, expected {streams['expected_chunks']})",
            f"- wall time for all: {streams['elapsed_s']:.1f} s",
            f"- gateway peak RSS (sampled every 250 ms): {streams['peak_rss_kib'] / 1024:.1f} MiB",
        ]
        if streams["failures"]:
            lines.append(f"- failures: {streams['failures']}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per run of wrk")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell, alternating targets; the best counts")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--stream-chunks", type=int, default=100)
    parser.add_argument("--stream-interval", type=float, default=0.1)
    parser.add_argument(
        "--feature-rounds", type=int, default=5, help="rounds of the simultaneous per-feature measurement (0: skip it)"
    )
    parser.add_argument("--only", action="append", choices=KINDS, help="measure only this endpoint (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="do not overwrite bench/RESULTS.md")
    parser.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        metavar="TREE",
        help="only this: CPU per request of the gateway as each checkout TREE has it, all at the same time "
        "(e.g. `git worktree add /tmp/old HEAD~1`, then --compare /tmp/old .)",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="only this: CPU per request of a response cache hit against the same request served upstream",
    )
    args = parser.parse_args()
    ensure_tools()
    raise_fd_limit()
    if args.cache:
        with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
            print("CPU per request, a plain request and a cache hit side by side:", flush=True)
            cache_costs(Path(tmp), tuple(args.only or KINDS), args.feature_rounds or 5, 5)
        return 0
    if args.compare:
        with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
            print("CPU per request, the trees side by side:", flush=True)
            tree_costs(
                Path(tmp), [t.resolve() for t in args.compare], tuple(args.only or KINDS), args.feature_rounds or 5, 5
            )
        return 0
    with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
        workdir = Path(tmp)
        print("throughput (wrk):", flush=True)
        results, peak = throughput(
            workdir, args.seconds, args.warmup, args.connections, args.rounds, tuple(args.only or KINDS)
        )
        features = None
        if args.feature_rounds:
            print("what each feature costs (all variants at once):", flush=True)
            features = feature_costs(workdir, tuple(args.only or KINDS), args.feature_rounds, 5)
        streams = None
        if args.streams:
            print(f"{args.streams} concurrent streams ...", flush=True)
            streams = concurrent_streams(workdir, args.streams, args.stream_chunks, args.stream_interval)
    text = report(results, peak, streams, features, args)
    print("\n" + text)
    failed = [f"{kind}/{name}" for (kind, name), r in results.items() if r.errors]
    if streams and streams["completed"] != streams["streams"]:
        failed.append("concurrent streams")
    if failed:
        print(f"errors in {', '.join(failed)}: figures not written (see the logs above)", file=sys.stderr)
        return 1
    if not args.no_write and not args.only:
        (HERE / "RESULTS.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
