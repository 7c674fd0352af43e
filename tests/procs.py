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
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "localrouter.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def start_serve(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """``serve`` in ``cwd`` (default: a fresh temporary directory, where its usage records go)."""
    cwd = cwd or Path(tempfile.mkdtemp(prefix="localrouter-serve-"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--port", "0", *args, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},  # the tree under test, whatever is installed
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines = []
    async with asyncio.timeout(20):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on (http://\S+)", line):
                if not any("generated a secret" in seen for seen in lines):  # that one is shown on purpose
                    leakcheck.LINES.extend(lines)
                return proc, match.group(1), lines


async def read_until(proc, text: str, timeout: float = 10.0) -> str:
    """The process's output up to the first line that contains ``text``."""
    seen = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(seen)
                seen.append(line)
                if text in line:
                    return "".join(seen)
    finally:
        leakcheck.LINES.extend(seen)


async def stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        leakcheck.LINES.extend((await proc.stdout.read()).decode(errors="replace").splitlines())
        return await proc.wait()
