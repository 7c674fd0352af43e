"""A strategy's ``mcp`` globs: which ``{server}__{name}`` items (and which servers' resources) it may use."""

from __future__ import annotations

import pytest

from gateway.mcp.access import McpAccess, allowed, qualified, split


@pytest.mark.parametrize(
    ("globs", "server", "name", "expected"),
    [
        (None, "files", "read_file", False),  # no mcp entry: nothing
        ([], "files", "read_file", False),
        (["*"], "files", "read_file", True),
        (["files"], "files", "read_file", True),  # a bare server name: all of it
        (["files"], "files", "note://x/y", True),  # ... its resources too
        (["files"], "filesystem", "read_file", False),
        (["files__*"], "files", "read_file", True),
        (["files__*"], "files", "file:///srv/docs/a.md", True),  # ``*`` crosses ``/``
        (["files__read_*"], "files", "read_file", True),
        (["files__read_*"], "files", "write_file", False),
        (["files__read_*"], "tracker", "read_file", False),
        (["files__read_file"], "files", "read_file_fast", False),  # whole names only
        (["Files"], "files", "read_file", False),  # case matters
        (["*__search"], "tracker", "search", True),
        (["*__search"], "tracker", "search_all", False),
        (["tracker", "files__read_*"], "files", "read_x", True),
        (["files__file:///srv/docs/*"], "files", "file:///srv/docs/a.md", True),
        (["files__file:///srv/docs/*"], "files", "file:///etc/passwd", False),
    ],
)
def test_globs(globs, server, name, expected):
    assert allowed(globs, server, name) is expected
    assert McpAccess.compile(globs).allows(server, name) is expected


def test_names_split_at_the_first_separator():
    assert qualified("files", "read_file") == "files__read_file"
    assert split("files__read_file") == ("files", "read_file")
    assert split("files__my__tool") == ("files", "my__tool")
    assert split("read_file") is None
    assert split("files__") is None
    assert split("__x") is None


def test_sees_tells_whom_a_servers_list_change_concerns_generously_never_short():
    assert McpAccess.compile(["files__read_*"]).sees("files")
    assert McpAccess.compile(["files"]).sees("files") and McpAccess.compile(["fil*"]).sees("files")
    assert McpAccess.compile(["*"]).sees("files") and McpAccess.compile(["files__echo"]).sees("files")
    assert not McpAccess.compile(["tracker", "other__*", "files2__x"]).sees("files")
    assert not McpAccess.compile(None).sees("files")
