"""The gateway as a real process: run the CLI, start `serve`, stop it with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests import leakcheck

ROOT = Path(__file__).parents[1]


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "localrouter.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Output:
    """Everything a gateway process prints, in a file (a pipe nobody reads would fill up and block the
    process and its workers), read back as it grows; kept for the test and for the leak check."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = 0

    @property
    def lines(self) -> list[str]:
        return self.path.read_text(errors="replace").splitlines(keepends=True)

    async def until(self, text: str, start: int = 0, timeout: float = 10.0) -> int:
        """The index of the first line from ``start`` on that contains ``text``."""
        async with asyncio.timeout(timeout):
            while True:
                lines = self.lines
                for i in range(start, len(lines)):
                    if text in lines[i]:
                        return i
                await asyncio.sleep(0.05)


OUTPUTS: dict[int, Output] = {}


async def start_serve(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """``serve`` in ``cwd`` (default: a fresh temporary directory, where its usage records go)."""
    cwd = cwd or Path(tempfile.mkdtemp(prefix="localrouter-serve-"))
    log = Path(tempfile.mkdtemp(prefix="localrouter-out-")) / "output.log"
    with open(log, "wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--port",
            "0",
            *args,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},  # the tree under test, whatever is installed
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    out = OUTPUTS[proc.pid] = Output(log)
    workers = "--workers" in args and args[args.index("--workers") + 1] != "1"
    try:
        i = await out.until("workers)" if workers else "listening on", timeout=20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("serve did not start:\n" + "".join(out.lines)) from None
    lines = out.lines[: i + 1]
    url = re.search(r"listening on (http://\S+)", lines[-1]).group(1)
    return proc, url, lines


async def read_until(proc, text: str, timeout: float = 10.0) -> str:
    """The process's output up to the first line after the last call that contains ``text``."""
    out = OUTPUTS[proc.pid]
    start = out.mark
    i = await out.until(text, start, timeout)
    out.mark = i + 1
    return "".join(out.lines[start : i + 1])


async def stop(proc) -> int:
    out = OUTPUTS.pop(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(30):
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        raise AssertionError("".join(line for line in out.lines if not line.startswith("{"))[-3000:]) from None
    lines = out.lines
    if not any("generated a secret" in line for line in lines):  # that one is shown on purpose
        leakcheck.LINES.extend(lines)
    return code
