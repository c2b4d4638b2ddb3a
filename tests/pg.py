"""A PostgreSQL 15 server of the tests' own: Debian's binaries, a temporary data folder, a
free loopback port and a generated password; started as its own process and stopped by its
pid (never a system service). As root it runs as the `postgres` system user, because the
server refuses to run as root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

BIN = Path(os.environ.get("IVR112_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
USER = "ivr112"
MISSING = "PostgreSQL 15 is not installed (no /usr/lib/postgresql/15/bin/initdb): `make deps` installs Debian's postgresql-15"


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "postgres").exists()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ivr112-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        self.pid: int | None = None
        self._as_postgres = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        subprocess.run(
            self._cmd(str(BIN / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                      "-E", "UTF8", "--locale=C.UTF-8"),
            check=True, capture_output=True, timeout=START_TIMEOUT_S,
        )
        pwfile.unlink()

    def start(self) -> None:
        """Start the server and wait until it takes connections (a real ready signal, not a sleep)."""
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists() and not _alive(int(pidfile.read_text().split()[0])):
            pidfile.unlink()  # left by a server we killed: its "ready" mark must not be taken for the new one's
        if self._as_postgres:
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        log = open(self.log, "ab")
        process = subprocess.Popen(
            self._cmd(str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                      "-c", f"unix_socket_directories={self.sockets}", "-c", "max_connections=60"),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(pidfile):
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start ({process.returncode}); its log:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not take connections in {START_TIMEOUT_S} s; its log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.02)  # polling the server's own ready mark against a deadline
        # runuser forks: the server's own pid is in its pid file.
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self._runner = process

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Stop the server by its pid: SIGINT is PostgreSQL's fast shutdown, SIGKILL a crash."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL (pid {self.pid}) did not stop in {STOP_TIMEOUT_S} s")
            time.sleep(0.02)
        self._runner.wait(timeout=STOP_TIMEOUT_S)
        self.pid = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url_for(self, database: str) -> str:
        """The URL of one of the server's databases, as `store_url` and psycopg take it."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (the form `store_url` takes)."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)


@contextmanager
def running() -> Iterator[PostgresServer]:
    """A server of one's own for the block (the test is skipped, saying why, when PostgreSQL is not installed)."""
    if not available():
        pytest.skip(MISSING)
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def _ready(pidfile: Path) -> bool:
    """PostgreSQL writes its state as the pid file's 8th line: "ready" once it takes connections."""
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
