"""The Dockerfile and compose file, checked statically (no Docker engine on these machines): they parse,
and everything they name exists and fits together."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway import config as gwconfig
from providers.registry import TYPES

DEPLOY = Path(__file__).parents[2] / "deploy"
ROOT = DEPLOY.parent


def instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_is_small_non_root_health_checked_and_copies_what_exists():
    steps = instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    for op, arg in steps:
        if op == "COPY" and "--from" not in arg:
            *sources, _ = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), source
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(op == "HEALTHCHECK" and "/health" in arg for op, arg in steps)
    entry = next(arg for op, arg in steps if op == "ENTRYPOINT")
    assert "localrouter" in entry and "/etc/localrouter/localrouter.yaml" in entry and "0.0.0.0" in entry
    # only the installed package: the source tree is copied into the build stage alone
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    assert not any(op == "COPY" and "--from" not in arg for op, arg in final)


def test_compose_file_wires_gateway_redis_and_nginx():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"gateway", "redis", "postgres", "nginx"}
    gateway = services["gateway"]
    assert (ROOT / gateway["build"]["context"].replace("..", ".") / gateway["build"]["dockerfile"]).exists() or (
        DEPLOY / ".." / gateway["build"]["dockerfile"]
    ).exists()
    assert "--workers" in gateway["command"]
    mounts = {m.split(":")[1] for m in gateway["volumes"]}
    assert "/etc/localrouter/localrouter.yaml" in mounts and "/var/lib/localrouter" in mounts
    assert "LOCALROUTER_SIGNING_KEY" in gateway["environment"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    nginx = services["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"] and (DEPLOY / "nginx.conf").exists()
    assert set(compose["volumes"]) >= {"usage", "redis", "postgres"}
    # the grace period covers the gateway's default drain + shutdown timeout, and the second it may take more
    grace = int(re.match(r"(\d+)s", gateway["stop_grace_period"]).group(1))
    defaults = gwconfig.ServerConfig()
    assert grace > defaults.drain_seconds + defaults.shutdown_timeout + 1


def test_nginx_conf_has_what_llm_traffic_needs():
    conf = (DEPLOY / "nginx.conf").read_text()
    for line in (
        "proxy_buffering off;",
        "proxy_read_timeout 900s;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "keepalive 64;",
        "X-Forwarded-For",
        "X-Request-ID",
        "# listen 443 ssl;",
    ):
        assert line in conf, line
    limit = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1)) * 1024 * 1024
    assert limit == gwconfig.ServerConfig().max_body_bytes


def test_the_example_config_works_in_the_compose_setup():
    text = (DEPLOY / "localrouter.example.yaml").read_text()
    assert "redis://redis:6379/0" in text and "trusted_proxies" in text


def test_the_example_configs_postgres_block_parses_with_the_compose_service():
    text = (DEPLOY / "localrouter.example.yaml").read_text()
    for key in ("backend", "url", "pool"):
        text = text.replace(f"  # {key}: ", f"  {key}: ")
    data = yaml.safe_load(text)
    env = {name: "x" * 40 for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)}
    usage = gwconfig.parse(data, env, types=TYPES).usage
    assert usage.backend == "postgres" and usage.url is not None
    assert usage.url.reveal().endswith("@postgres:5432/localrouter")  # the compose service's name and database
