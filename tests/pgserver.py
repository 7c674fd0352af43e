"""A real PostgreSQL server on 127.0.0.1 for the tests that need one (tests/run installs it with apt):
a throw-away cluster in a temporary directory, stopped and deleted at the end.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user the Debian
package creates, and its commands run through ``runuser``."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.redisserver import free_port

USER, PASSWORD, DATABASE = "localrouter", "s3cret-pg-password", "localrouter"


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    assert versions, "PostgreSQL is not installed: run the tests with `bash tests/run`, which installs it"
    return Path(versions[-1]).parent


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="localrouter-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120, check=True
        )

    def init(self) -> PostgresServer:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if self._as:
            owner = pwd.getpwnam("postgres")
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "-A", "scram-sha-256", "-N")
        return self

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def create_database(self) -> PostgresServer:
        env = ["env", f"PGPASSWORD={PASSWORD}"]
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        subprocess.run(
            [*self._as, *env, str(self.bin / "createdb"), *where, DATABASE],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return self

    def start_if_stopped(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            self.start()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # stopped already
        shutil.rmtree(self.root, ignore_errors=True)
