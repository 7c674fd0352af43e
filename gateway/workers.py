"""``serve --workers N``: N gateway processes on one port (SO_REUSEPORT), each with its own event loop.

The supervisor reserves the port, starts each worker as ``serve`` with the same arguments, forwards
SIGTERM/SIGINT (graceful drain in every worker) and SIGHUP (reload), restarts a worker that dies,
and exits 0 once every worker has exited 0. Each worker snapshots its metrics into a directory the
supervisor creates and removes, and a scrape on any worker sums them (gateway.observability.metrics).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from gateway import __version__
from gateway.config.observability import METRICS_DIR_ENV
from gateway.listen import ListenError

RESTART_BACKOFF = 1.0


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A socket bound (not listening) to the port, so that ``--port 0`` gives every worker the same one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc) from exc
    return sock, sock.getsockname()[1]


class Supervisor:
    def __init__(self, argv: list[str], workers: int, host: str, port: int) -> None:
        self.argv, self.count, self.host = argv, workers, host
        self.reserved, self.port = reserve_port(host, port)
        self.metrics_dir = tempfile.mkdtemp(prefix="localrouter-metrics-")
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        # tokens must verify on every worker: without a configured key, one random key for all of them
        self.env = {**os.environ, METRICS_DIR_ENV: self.metrics_dir}
        self.env.setdefault("LOCALROUTER_SIGNING_KEY", secrets.token_urlsafe(32))

    def _start(self, slot: int) -> None:
        read, write = os.pipe()
        env = self.env
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            *self.argv,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--reuse-port",
            "--ready-fd",
            str(write),
        ]
        proc = subprocess.Popen(cmd, pass_fds=(write,), env=env)
        os.close(write)
        with os.fdopen(read, "rb") as ready:
            ok = ready.readline().strip() == b"ready"
        if not ok:
            raise RuntimeError(f"worker {slot} did not start (exit {proc.wait()})")
        self.procs[slot] = proc
        if self.stopping:  # the stop came while it started: _stop did not know it yet
            proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGHUP, self._forward)
        try:
            for slot in range(self.count):
                if not self.stopping:
                    self._start(slot)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self._stop(signal.SIGTERM, None)
            self._wait_all()
            return 1
        shown = f"[{self.host}]" if ":" in self.host else self.host
        print(
            f"LocalRouter Gateway {__version__} listening on http://{shown}:{self.port} ({self.count} workers)",
            flush=True,
        )
        while not self.stopping:
            for slot, proc in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping:
                    print(f"worker {proc.pid} exited ({proc.returncode}); restarting it", file=sys.stderr, flush=True)
                    time.sleep(RESTART_BACKOFF)
                    if self.stopping:
                        break
                    try:
                        self._start(slot)
                    except RuntimeError as exc:
                        print(f"error: {exc}", file=sys.stderr, flush=True)
            time.sleep(0.2)
        return self._wait_all()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def _forward(self, signum: int, frame: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def _wait_all(self) -> int:
        codes = [proc.wait() for proc in self.procs.values()]
        for proc, code in zip(self.procs.values(), codes, strict=True):
            if code != 0:
                print(f"worker {proc.pid} exited with {code}", file=sys.stderr, flush=True)
        self.reserved.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return 0 if all(code == 0 for code in codes) else 1
