"""deploy/nginx.conf run for real on 127.0.0.1 in front of a test gateway, or several (tests/run installs nginx).

The file is used as shipped; only what ties it to docker compose is swapped: the upstream addresses,
the listen port, and the paths a process of one's own needs (pid, logs, temp directories)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.redisserver import free_port

CONF = Path(__file__).parents[1] / "deploy" / "nginx.conf"


def render(workdir: Path, gateway_port: int | Sequence[int], port: int) -> str:
    ports = [gateway_port] if isinstance(gateway_port, int) else gateway_port
    servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in ports)
    text = CONF.read_text()
    for old, new in (
        ("server gateway:3625;", servers),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        (
            "worker_processes auto;",
            f"worker_processes 2;\ndaemon off;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;",
        ),
        (
            "http {",
            f"http {{\n    access_log off;\n    client_body_temp_path {workdir}/body;\n"
            f"    proxy_temp_path {workdir}/proxy;\n    fastcgi_temp_path {workdir}/fcgi;\n"
            f"    uwsgi_temp_path {workdir}/uwsgi;\n    scgi_temp_path {workdir}/scgi;",
        ),
    ):
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new, 1)
    return text


class Nginx:
    def __init__(self, workdir: Path, gateway_port: int | Sequence[int]) -> None:
        binary = shutil.which("nginx")
        assert binary, "nginx is not installed: run the tests with `bash tests/run`, which installs it"
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        workdir.chmod(0o755)
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(render(workdir, gateway_port, self.port))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-t", "-p", str(self.workdir), "-c", str(self.conf)], capture_output=True, text=True
        )

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.workdir), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        log = self.workdir / "error.log"
        raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
