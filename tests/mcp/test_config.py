"""``mcp_servers`` and ``strategies[].mcp``: read strictly, every problem with its YAML path."""

from __future__ import annotations

import pytest

from gateway import config as gwconfig
from gateway.config import McpServerConfig, McpTimeouts, Secret
from providers.registry import TYPES
from tests.mcp.conftest import TRACKER_TOKEN, config


def problems(servers: list, mcp: list | None = None) -> list[str]:
    with pytest.raises(gwconfig.ConfigError) as err:
        config(servers, mcp)
    return err.value.problems


def test_both_transports_read_into_frozen_types_with_secrets_hidden():
    cfg = config(
        [
            {"name": "files", "command": ["python", "-m", "srv", "${HOME_DIR}"], "env": {"TOKEN": "${TRACKER_TOKEN}"}},
            {
                "name": "tracker",
                "url": "http://127.0.0.1:9000/mcp",
                "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}"},
                "timeouts": {"connect": 3, "call": 120},
            },
        ],
        mcp=["files__read_*", "tracker"],
        env={"HOME_DIR": "/srv/docs"},
    )
    files, tracker = cfg.mcp_servers
    assert files == McpServerConfig("files", ("python", "-m", "srv", "/srv/docs"), env={"TOKEN": Secret(TRACKER_TOKEN)})
    assert files.transport == "stdio" and files.timeouts == McpTimeouts(10.0, 60.0)
    assert tracker.transport == "http" and tracker.url == "http://127.0.0.1:9000/mcp"
    assert tracker.headers["Authorization"].reveal() == f"Bearer {TRACKER_TOKEN}"
    assert tracker.timeouts == McpTimeouts(3.0, 120.0)
    assert TRACKER_TOKEN not in repr(cfg)
    assert cfg.strategies[0].mcp == ("files__read_*", "tracker")


def test_a_strategy_without_mcp_has_none():
    cfg = config([{"name": "files", "command": ["srv"]}])
    assert cfg.strategies[0].mcp is None
    assert config([]).mcp_servers == ()


def test_each_problem_names_its_path():
    found = problems(
        [
            {"name": "both", "command": ["srv"], "url": "http://127.0.0.1/mcp"},
            {"name": "neither"},
            {"name": "a__b", "command": ["srv"]},
            {"name": "end_", "command": ["srv"]},
            {"name": "empty", "command": []},
            {"name": "badurl", "url": "ftp://x"},
            {"name": "envhttp", "url": "http://127.0.0.1/mcp", "env": {"A": "b"}},
            {"name": "hdrstdio", "command": ["srv"], "headers": {"A": "b"}},
            {"name": "times", "command": ["srv"], "timeouts": {"conect": 1, "call": -1}},
            {"name": "unset", "command": ["srv"], "env": {"A": "${NOT_SET_ANYWHERE}"}},
            {"name": "times", "command": ["srv"], "cwd": "/"},
        ],
        mcp=["files__*", "t*", "times__x"],
    )
    assert found == [
        "mcp_servers[0]: exactly one of 'command' (stdio) or 'url' (Streamable HTTP) is required",
        "mcp_servers[1]: exactly one of 'command' (stdio) or 'url' (Streamable HTTP) is required",
        "mcp_servers[2].name: 'a__b': it prefixes its tools as 'a__b__tool': no '__' in it, no '_' at its end",
        "mcp_servers[3].name: 'end_': it prefixes its tools as 'end___tool': no '__' in it, no '_' at its end",
        "mcp_servers[4].command: must not be empty",
        "mcp_servers[5].url: not a URL",
        "mcp_servers[6].env: only for stdio servers",
        "mcp_servers[7].headers: only for Streamable HTTP servers",
        "mcp_servers[8].timeouts.conect: unknown key",
        "mcp_servers[8].timeouts.call: must be positive",
        "mcp_servers[9].env.A: environment variable NOT_SET_ANYWHERE is not set",
        "mcp_servers[10].cwd: unknown key",
        "mcp_servers[10].name: duplicate name 'times'",
        "strategies[0].mcp[0]: 'files__*' matches no server in mcp_servers",
    ]


def test_mcp_globs_must_be_able_to_match_a_server():
    servers = [{"name": "files", "command": ["srv"]}]
    assert problems(servers, mcp=["file", "nope__*", "*__x", "f*", "*read*", "[fg]iles__x"]) == [
        "strategies[0].mcp[0]: 'file' matches no server in mcp_servers",
        "strategies[0].mcp[1]: 'nope__*' matches no server in mcp_servers",
    ]
    assert problems(servers, mcp="files") == ["strategies[0].mcp: expected a list"]


def test_the_mcp_section_sets_the_session_bounds_strictly():
    base = {
        "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "strategies": [{"name": "default", "allow": ["*"]}],
        "clients": [],
    }
    assert gwconfig.parse(base, {}, types=TYPES).mcp == gwconfig.McpConfig(100, 10_000, 3600.0)
    cfg = gwconfig.parse({**base, "mcp": {"max_sessions_per_client": 5, "session_idle": 60}}, {}, types=TYPES)
    assert cfg.mcp == gwconfig.McpConfig(5, 10_000, 60.0)
    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse({**base, "mcp": {"max_sessions_per_client": 0, "max_session": 1}}, {}, types=TYPES)
    assert sorted(err.value.problems) == [
        "mcp.max_session: unknown key",
        "mcp.max_sessions_per_client: must be positive",
    ]
