"""``localrouter``: serve the gateway, or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway import __version__, config
from gateway.listen import ListenError
from providers.registry import TYPES

log = logging.getLogger("localrouter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localrouter", description="LocalRouter Gateway")
    parser.add_argument("--version", action="version", version=f"localrouter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", help="YAML config (default: ./localrouter.yaml, else built-in)")
    serve.add_argument("--host", help="address to bind (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to bind (overrides server.port; 0 picks one)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes on the one port (needs state.backend: "
        "redis so that limits are shared, unless --allow-per-process-limits)",
    )
    serve.add_argument(
        "--allow-per-process-limits",
        action="store_true",
        help="with --workers > 1 and the memory state: each worker keeps its own budgets",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
    serve.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    check = sub.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("-c", "--config", help="YAML config (default: ./localrouter.yaml, else built-in)")
    sub.add_parser("new-secret", help="print a fresh client secret and the line to put in the config")
    usage = sub.add_parser("usage", help="who used what: a summary of the usage records")
    usage.add_argument("-c", "--config", help="YAML config whose usage.path to read (default as for serve)")
    usage.add_argument("--db", help="the usage SQLite file (overrides the config's usage.path)")
    usage.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d, 4w (default 7d)")
    usage.add_argument("--by", default="client", choices=["client", "model", "provider", "day", "tool"])
    usage.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    clients = sub.add_parser("clients", help="operator actions on a client, in the state the running gateway shares")
    clients.add_argument("action", choices=["resume"], help="resume: end the client's suspension")
    clients.add_argument("name", help="the client's name in the config")
    clients.add_argument("-c", "--config", help="YAML config whose state.backend to use (default as for serve)")
    db = sub.add_parser("db", help="the PostgreSQL store (usage.backend: postgres)")
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply the schema's missing migrations")
    db.add_argument("-c", "--config", help="YAML config whose usage.url to use (default as for serve)")
    return parser


def new_secret() -> str:
    secret = config.generate_secret()
    return (
        f"{secret}\n"
        f"# give the line above to the client; put only this one in the config:\n"
        f"secret_sha256: {config.hash_secret(secret)}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "new-secret":
        print(new_secret())
        return 0
    if args.command == "usage" and args.db:
        return usage_report(args.db, args)
    try:
        cfg = config.resolve(args.config, types=TYPES)
    except config.ConfigError as exc:
        print(f"invalid config ({len(exc.problems)} problem{'s' * (len(exc.problems) != 1)}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(summary(cfg))
        return 0
    if args.command == "db":
        return db_upgrade(cfg)
    if args.command == "clients":
        return client_resume(cfg, args.name)
    if args.command == "usage" and cfg.usage.backend == "postgres":
        print(f"usage records from PostgreSQL (usage.url of {_source(cfg)})", file=sys.stderr)
        return usage_report(None, args, cfg.usage)
    if args.command == "usage":
        if cfg.usage.path is None:
            print("usage records are off in this config (usage.path: null)", file=sys.stderr)
            return 2
        # the path is relative to where the command runs: say which file that was
        print(f"usage records from {os.path.abspath(cfg.usage.path)} (usage.path of {_source(cfg)})", file=sys.stderr)
        return usage_report(cfg.usage.path, args)
    return serve(cfg, args, argv)


def usage_report(path: str | None, args: argparse.Namespace, shared: config.UsageConfig | None = None) -> int:
    """From the SQLite file at ``path``, or the ``shared`` store the config names (every replica's)."""
    from gateway.observability.stores import usage_store
    from gateway.observability.usage import SQLiteStore, StoreError, UsageStore, since_seconds

    try:
        since = since_seconds(args.since)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if path is not None and not Path(path).is_file():
        print(f"no usage records at {os.path.abspath(path)}", file=sys.stderr)
        return 2
    try:
        store: UsageStore | None = SQLiteStore(path) if path is not None else usage_store(shared) if shared else None
    except sqlite3.DatabaseError as exc:  # not a database, or not one the gateway wrote
        print(f"error: {os.path.abspath(path or '')} holds no usage records ({exc})", file=sys.stderr)
        return 2
    assert store is not None
    try:
        rows = store.summary(since, args.by)
    except sqlite3.DatabaseError as exc:
        print(f"error: {os.path.abspath(path or '')} holds no usage records ({exc})", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"usage records not read: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(usage_table(rows, args.by))
    return 0


def db_upgrade(cfg: config.Config) -> int:
    from gateway.observability.postgres import upgrade
    from gateway.observability.usage import StoreError

    if cfg.usage.backend != "postgres" or cfg.usage.url is None:
        print("usage.backend is not postgres in this config: nothing to upgrade", file=sys.stderr)
        return 2
    try:
        version = upgrade(cfg.usage.url.reveal())
    except StoreError as exc:
        print(f"schema not upgraded: {exc}", file=sys.stderr)
        return 1
    print(f"schema at version {version}")
    return 0


def client_resume(cfg: config.Config, name: str) -> int:
    """End a suspension where the running gateway reads it: the way back for an operator locked out (the
    admin API needs an admin client that is not suspended)."""
    from gateway.auth.overrides import OverridesUnavailable, RedisStore

    if not any(c.name == name for c in cfg.clients):
        print(f"no client named {name!r} in {_source(cfg)}", file=sys.stderr)
        return 2
    if cfg.state.backend != "redis":
        print(
            f"state.backend is {cfg.state.backend}: suspensions live only in the running gateway's processes and "
            "end when it stops. Restart it, or resume the client with another admin's secret (POST "
            f"/admin/api/clients/{name}/resume).",
            file=sys.stderr,
        )
        return 2
    store = RedisStore(cfg.state.redis_url, cfg.state.key_prefix, cfg.state.timeout)

    async def resume() -> None:
        try:
            await store.suspend(name, False)
        finally:
            await store.close()

    try:
        asyncio.run(resume())
    except OverridesUnavailable as exc:
        print(f"not resumed: the shared state cannot be reached ({exc})", file=sys.stderr)
        return 1
    print(f"client {name!r} resumed in Redis (state.redis_url): every gateway process serves it again within a second")
    return 0


def usage_table(rows: list[dict[str, Any]], by: str) -> str:
    columns = [by, "requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "unpriced", "errors"]
    columns += ["cached", "saved_usd"]

    def usd(value: float | None) -> str:
        return "-" if value is None else f"{value:.6f}"

    def key(row: dict[str, Any]) -> str:  # failed requests may have no model or provider
        return f"(no {by})" if row[by] is None else str(row[by])

    body = [
        [
            key(r),
            str(r["requests"]),
            str(r["prompt_tokens"]),
            str(r["completion_tokens"]),
            str(r["total_tokens"]),
            usd(r["cost_usd"]),
            str(r["unpriced_requests"]),
            str(r["errors"]),
            str(r["cached_requests"]),
            usd(r["saved_usd"]),
        ]
        for r in rows
    ]
    totals = [
        "total",
        *(str(sum(r[k] for r in rows)) for k in ("requests", "prompt_tokens", "completion_tokens", "total_tokens")),
        f"{sum(r['cost_usd'] or 0 for r in rows):.6f}",
        str(sum(r["unpriced_requests"] for r in rows)),
        str(sum(r["errors"] for r in rows)),
        str(sum(r["cached_requests"] for r in rows)),
        f"{sum(r['saved_usd'] or 0 for r in rows):.6f}",
    ]
    table = [columns, *body, totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    lines = [fmt(columns), "  ".join("-" * w for w in widths), *(fmt(r) for r in body), fmt(totals)]
    return "\n".join(lines)


def summary(cfg: config.Config) -> str:
    lines = [f"config OK: {cfg.source}", f"server: {cfg.server.host}:{cfg.server.port}", ""]
    lines.append(f"providers ({len(cfg.providers)}):")
    width = max(map(len, TYPES))
    for p in cfg.providers:
        models = ", ".join(p.models) if p.models is not None else f"discovered from {p.shown_url}/models"
        # what it serves: the endpoints configured that its wire format has
        served = sorted(TYPES[p.type].capabilities & p.endpoints)
        lines.append(f"  {p.name:<16} {p.type:<{width}} {p.shown_url}  [{', '.join(served) or 'nothing'}]")
        lines.append(f"  {'':<16} models: {models}")
    lines.append(f"strategies ({len(cfg.strategies)}):")
    for s in cfg.strategies:
        auto = f"  auto: {' -> '.join(s.auto)}" if s.auto else ""
        lines.append(f"  {s.name:<16} allow: {', '.join(s.allow) or '(nothing)'}{auto}  fallbacks: {len(s.fallbacks)}")
    lines.append(f"clients ({len(cfg.clients)}):")
    for c in cfg.clients:
        lines.append(f"  {c.name:<16} strategy: {c.strategy}{'' if c.enabled else '  (disabled)'}")
    return "\n".join(lines)


def serve(cfg: config.Config, args: argparse.Namespace, argv: list[str]) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = args.host or cfg.server.host
    port = cfg.server.port if args.port is None else args.port
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        if cfg.state.backend != "redis" and not args.allow_per_process_limits:
            print(
                f"refusing --workers {args.workers} with state.backend: {cfg.state.backend}: every worker would "
                "keep its own rate limits and token throttle, so clients would get N times their budget. Use "
                "state.backend: redis, or --allow-per-process-limits if that is what you want.",
                file=sys.stderr,
            )
            return 2
        if not Path(cfg.source).is_file():
            print("--workers needs a config file (-c): the workers read it themselves", file=sys.stderr)
            return 2
        from gateway.workers import Supervisor

        _startup_lines(cfg)
        try:
            supervisor = Supervisor(_worker_argv(argv), args.workers, host, port)
        except ListenError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return supervisor.run()
    if args.ready_fd is None:
        _startup_lines(cfg)
    if cfg.generated_secret is not None:
        print(
            "No client configured: generated a secret for client 'default' (shown once; set "
            f"LOCALROUTER_SECRET to choose it):\n  {cfg.generated_secret.reveal()}",
            flush=True,
        )
    if cfg.server.internal_test_token and args.ready_fd is None:
        print(
            "WARNING: server.internal_test_token is on: the 'internal-test' token bypasses every client "
            "restriction for callers on this host. Turn it off outside development.",
            file=sys.stderr,
            flush=True,
        )
    from gateway.server import serve as serve_app

    try:
        _run(serve_app(cfg, host, port, reuse_port=args.reuse_port, ready_fd=args.ready_fd))
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _source(cfg: config.Config) -> str:
    if Path(cfg.source).is_file():
        return os.path.abspath(cfg.source)
    return "the embedded default (no -c, and no ./localrouter.yaml here)"


def _startup_lines(cfg: config.Config) -> None:
    """Where the running config and the usage records are: relative paths depend on where it started."""
    print(f"config: {_source(cfg)}")
    usage = "off (usage.path: null)" if cfg.usage.path is None else os.path.abspath(cfg.usage.path)
    if cfg.usage.backend == "postgres":
        usage = "PostgreSQL (usage.url)"
    print(f"usage records: {usage}", flush=True)


def _worker_argv(argv: list[str]) -> list[str]:
    """The supervisor's own arguments minus those it sets for each worker."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--host", "--port"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--host=", "--port=")) or arg == "--allow-per-process-limits":
            continue
        out.append(arg)
    return out


def _run(main: Coroutine[Any, Any, None]) -> None:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional off Linux/macOS
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)
