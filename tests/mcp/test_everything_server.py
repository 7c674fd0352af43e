"""The reference MCP server, ``@modelcontextprotocol/server-everything`` from npm (the version tests/run
installs into .ci/node), behind the gateway: as a stdio upstream the gateway starts, and as a Streamable
HTTP upstream on 127.0.0.1, with the official SDK as the gateway's client. A server nobody here wrote:
what it sends (titles, annotations, output schemas, images, resource links, progress) must reach the
client whole and valid."""

from __future__ import annotations

import base64
import gzip
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import ClientSession, MCPError

from tests.conftest import ALICE, BOB
from tests.mcp.test_inbound import connected, text
from tests.mcp.test_sessions import Heard, sdk, streams_open
from tests.procs import ROOT

NODE = shutil.which("node")
PACKAGE = ROOT / ".ci" / "node" / "node_modules" / "@modelcontextprotocol" / "server-everything"
LOOPBACK = ROOT / "tests" / "fakes" / "loopback_listen.cjs"
#: what BOB's strategy grants of it: two tools, the long one, one prompt, the static documents
SOME = [
    "everything__echo",
    "everything__get-sum",
    "everything__trigger-*",
    "everything__simple-prompt",
    "everything__demo://resource/static/*",
]

LISTS = [
    ("list_tools", "tools"),
    ("list_prompts", "prompts"),
    ("list_resources", "resources"),
    ("list_resource_templates", "resource_templates"),
]

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (tests/run installs nodejs with apt)")


def entry() -> Path:
    """The server's script; missing means tests/run did not install it: a failure, not a skip."""
    script = PACKAGE / "dist" / "index.js"
    if not script.is_file():
        pytest.fail(f"{script} is missing: tests/run installs @modelcontextprotocol/server-everything with npm")
    return script


@pytest.fixture(scope="module")
def everything_http() -> Iterator[str]:
    """The server in its Streamable HTTP mode, one process for the module: it takes a port (PORT) but no
    host, so a preloaded script binds it to 127.0.0.1 and says which free port it got."""
    assert NODE is not None
    folder = Path(tempfile.mkdtemp(prefix="mcp-everything-"))
    listen_file = folder / "listen"
    env = {"PORT": "0", "LISTEN_FILE": str(listen_file)}  # its get-env tool tells its environment: nothing else
    with (folder / "log").open("wb") as log:
        proc = subprocess.Popen(
            [NODE, "--require", str(LOOPBACK), str(entry()), "streamableHttp"], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while not listen_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert listen_file.exists(), (folder / "log").read_text()
        address, port = listen_file.read_text().split()
        assert address == "127.0.0.1"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(params=["stdio", "http"])
def upstream(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``mcp_servers[0]``: the server started by the gateway over stdio, or the HTTP one by its URL."""
    if request.param == "stdio":
        assert NODE is not None
        return {"name": "everything", "command": [NODE, str(entry()), "stdio"], "timeouts": {"call": 60}}
    return {"name": "everything", "url": request.getfixturevalue("everything_http"), "timeouts": {"call": 60}}


@pytest.fixture
async def gw(upstream, start_gateway):
    return await start_gateway(
        {
            "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
            "strategies": [
                {"name": "all", "allow": ["*"], "mcp": ["*"]},
                {"name": "some", "allow": ["*"], "mcp": SOME},
            ],
            "clients": [
                {"name": "alice", "secret": ALICE, "strategy": "all"},
                {"name": "bob", "secret": BOB, "strategy": "some"},
            ],
            "mcp_servers": [upstream],
        }
    )


async def every_page(session: ClientSession, method: str) -> list[Any]:
    """All the items of a list, following the gateway's cursors."""
    field = {"list_resources": "resources", "list_resource_templates": "resource_templates"}[method]
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = await getattr(session, method)(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        items += getattr(page, field)
        cursor = page.next_cursor
        if cursor is None:
            return items


async def test_tools_are_listed_prefixed_and_whole(gw):
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert {"everything__echo", "everything__get-sum", "everything__trigger-long-running-operation"} <= set(tools)
    assert all(name.startswith("everything__") for name in tools)
    # it runs only as an MCP task, which the gateway does not relay: no client could call it through it
    assert "everything__simulate-research-query" not in tools
    echo = tools["everything__echo"]
    assert echo.title == "Echo Tool" and echo.description == "Echoes back the input string"
    assert echo.input_schema["properties"]["message"]["type"] == "string"
    assert echo.annotations is not None and echo.annotations.read_only_hint is True
    weather = tools["everything__get-structured-content"]
    assert weather.output_schema is not None and "temperature" in weather.output_schema["properties"]


async def test_calls_and_their_content_blocks(gw):
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        assert text(await session.call_tool("everything__echo", {"message": "hi"})) == "Echo: hi"
        assert (
            text(await session.call_tool("everything__get-sum", {"a": 2, "b": 3.5})) == "The sum of 2 and 3.5 is 5.5."
        )
        # the SDK client checks structuredContent against the tool's outputSchema, as listed by the gateway
        weather = await session.call_tool("everything__get-structured-content", {"location": "Chicago"})
        assert weather.structured_content == {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
        image = await session.call_tool("everything__get-tiny-image", {})
        assert any(isinstance(b, types.ImageContent) and b.mime_type == "image/png" for b in image.content)
        links = await session.call_tool("everything__get-resource-links", {"count": 2})
        assert [type(b) for b in links.content[1:]] == [types.ResourceLink, types.ResourceLink]
        annotated = await session.call_tool("everything__get-annotated-message", {"messageType": "error"})
        assert annotated.content[0].annotations is not None and annotated.content[0].annotations.priority == 1.0
        wrong = await session.call_tool("everything__get-sum", {"a": "two", "b": 3})
        assert wrong.is_error  # the server's own validation failure, passed on as a result


async def test_progress_of_a_long_operation_reaches_the_client(gw):
    seen: list[tuple[float, float | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total))

    async with connected(f"{gw.url}/mcp", ALICE) as session:
        arguments = {"duration": 1.5, "steps": 3}
        result = await session.call_tool(
            "everything__trigger-long-running-operation", arguments, progress_callback=progress
        )
    assert text(result) == "Long running operation completed. Duration: 1.5 seconds, Steps: 3."
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_prompts(gw):
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
        assert {"everything__simple-prompt", "everything__args-prompt"} <= set(prompts)
        args = prompts["everything__args-prompt"].arguments or []
        assert [(a.name, a.required) for a in args] == [("city", True), ("state", False)]
        simple = await session.get_prompt("everything__simple-prompt")
        assert simple.messages[0].content.text == "This is a simple prompt without arguments."
        asked = await session.get_prompt("everything__args-prompt", {"city": "Lyon"})
        assert asked.messages[0].content.text == "What's weather in Lyon?"


async def test_resources_and_templates(gw):
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        resources = {str(r.uri): r for r in await every_page(session, "list_resources")}
        features = "demo://resource/static/document/features.md"
        assert features in resources and resources[features].mime_type == "text/markdown"
        read = await session.read_resource(features)
        assert read.contents[0].text.startswith("# Everything Server - Features")
        templates = [t.uri_template for t in await every_page(session, "list_resource_templates")]
        assert set(templates) == {
            "demo://resource/dynamic/text/{resourceId}",
            "demo://resource/dynamic/blob/{resourceId}",
        }
        # a URI no list named, routed by the template it matches
        assert text(await session.read_resource("demo://resource/dynamic/text/7")).startswith("Resource 7: ")
        blob = (await session.read_resource("demo://resource/dynamic/blob/2")).contents[0]
        assert isinstance(blob, types.BlobResourceContents) and blob.blob


async def test_a_strategy_hides_and_refuses_without_reaching_the_server(gw, http):
    async with connected(f"{gw.url}/mcp", BOB) as session:
        with pytest.raises(MCPError) as caught:
            await session.call_tool("everything__get-env", {})
        assert caught.value.error.code == types.INVALID_PARAMS
        assert "not allowed by this client's strategy" in caught.value.error.message
        async with http.get(f"{gw.url}/health?detail=1") as resp:
            servers = {s["name"]: s for s in (await resp.json())["mcp_servers"]}
        assert servers["everything"]["state"] == "idle"  # the refusal never started (or reached) the server
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"everything__echo", "everything__get-sum", "everything__trigger-long-running-operation"} <= tools
        assert "everything__get-env" not in tools and "everything__get-tiny-image" not in tools
        prompts = [p.name for p in (await session.list_prompts()).prompts]
        assert prompts == ["everything__simple-prompt"]
        uris = [str(r.uri) for r in await every_page(session, "list_resources")]
        assert uris and all(uri.startswith("demo://resource/static/") for uri in uris)
        assert await every_page(session, "list_resource_templates") == []
        with pytest.raises(MCPError):
            await session.read_resource("demo://resource/dynamic/text/1")
        assert text(await session.call_tool("everything__echo", {"message": "ok"})) == "Echo: ok"


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
async def test_a_long_call_cancelled_by_the_client(gw, http, streamed):
    """Cancelled while it runs (answered as JSON, or as a stream of its progress): the gateway cancels it
    and says so; the session goes on."""
    running = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        running.set()

    async with connected(f"{gw.url}/mcp", ALICE) as session:
        async with anyio.create_task_group() as calls:
            arguments = {"duration": 60, "steps": 60}
            name = "everything__trigger-long-running-operation"
            calls.start_soon(
                lambda: session.call_tool(name, arguments, progress_callback=progress if streamed else None)
            )
            with anyio.fail_after(20):
                await (running.wait() if streamed else anyio.sleep(1.5))
            calls.cancel_scope.cancel()
        assert text(await session.call_tool("everything__echo", {"message": "after"})) == "Echo: after"
    line = 'localrouter_mcp_calls_total{client="alice",item="other",server="everything",status="cancelled"} 1.0'
    with anyio.fail_after(10):  # far less than the call's 60 seconds, or its timeout
        while True:
            async with http.get(f"{gw.url}/metrics") as resp:
                if line in await resp.text():
                    break
            await anyio.sleep(0.1)


async def test_lists_pass_every_field_the_server_sent(gw, everything_http):
    """Each item as the gateway lists it equals the item as the server lists it to a direct client (the
    SDK's client too), but for the prefix of a name; only the tool that runs as a task alone is left out."""
    async with connected(f"{gw.url}/mcp", ALICE) as via, connected(everything_http, "unused") as direct:
        for method, field in LISTS:
            ours = [dumped(item) for item in getattr(await getattr(via, method)(), field)]
            theirs = [dumped(item) for item in getattr(await getattr(direct, method)(), field)]
            if field in ("tools", "prompts"):
                theirs = [{**item, "name": f"everything__{item['name']}"} for item in theirs]
            if field == "tools":
                assert any(item.get("execution", {}).get("taskSupport") == "required" for item in theirs)
                theirs = [item for item in theirs if item.get("execution", {}).get("taskSupport") != "required"]
            assert ours == theirs, method


def dumped(item: Any) -> dict[str, Any]:
    return item.model_dump(by_alias=True, mode="json", exclude_none=True)


@pytest.mark.parametrize("upstream", ["stdio"], indirect=True)
async def test_its_list_change_reaches_the_client(gw):
    """It registers more tools once initialized, and says so: the client hears it on its GET stream. Over
    stdio only: over HTTP it says so before any GET stream of its own is open, and a client straight to it
    misses it too."""
    heard = Heard()
    async with sdk(gw.url, message_handler=heard) as session:
        await streams_open(gw, 1)
        await session.list_tools()  # starts the server
        await heard.until("notifications/tools/list_changed")


async def test_a_resource_a_tool_made_is_read_by_its_link(gw):
    """A tool registers a resource and returns a link to it: the gateway, which has not listed it yet, finds
    which server has it and reads it there."""
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        await session.list_resources()
        data = "data:text/plain;base64," + base64.b64encode(b"hello gateway").decode()
        made = await session.call_tool("everything__gzip-file-as-resource", {"name": "hello.gz", "data": data})
        link = next(b for b in made.content if isinstance(b, types.ResourceLink))
        read = (await session.read_resource(str(link.uri))).contents[0]
    assert isinstance(read, types.BlobResourceContents) and read.mime_type == "application/gzip"
    assert gzip.decompress(base64.b64decode(read.blob)) == b"hello gateway"
