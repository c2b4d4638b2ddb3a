"""A PostgreSQL 15 server run as a plain process of ours: Debian's binaries, a data folder
we choose, a generated password; started and stopped by its pid (never a system service).

The tests start one on a free loopback port; `ivr112 cluster up` starts one inside the
database's network namespace (`prefix` is then `ip netns exec NS`). As root it runs as the
`postgres` system user, because the server refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("IVR112_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.02
USER = "ivr112"
MISSING = "PostgreSQL 15 is not installed (no /usr/lib/postgresql/15/bin/initdb): `make deps` installs Debian's postgresql-15"


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "postgres").exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server: `init()` once, then `start()` / `stop()` as often as wanted."""

    def __init__(self, root: Path | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 prefix: Sequence[str] = (), password: str | None = None, max_connections: int = 60) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="ivr112-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.host = host
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(18)
        self.prefix = list(prefix)
        self.max_connections = max_connections
        self.pid: int | None = None
        self._runner: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return self.prefix + (["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args))

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _make_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")

    def init(self) -> None:
        """Make the data folder (initdb) with the password; the user is `ivr112`."""
        self._make_root()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
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
        if pidfile.exists() and not alive(int(pidfile.read_text().split()[0])):
            pidfile.unlink()  # left by a server we killed: its "ready" mark must not be taken for the new one's
        if self._as_postgres:
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                self._cmd(str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-c", f"listen_addresses={self.host}",
                          "-c", f"unix_socket_directories={self.sockets}", "-c", f"max_connections={self.max_connections}"),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(pidfile):
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start ({process.returncode}); its log:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not take connections in {START_TIMEOUT_S} s; its log:\n{self.log.read_text()[-3000:]}")
            time.sleep(POLL_S)  # polling the server's own ready mark against a deadline
        # runuser forks: the server's own pid is in its pid file.
        self.pid = int(pidfile.read_text().split()[0])
        self._runner = process

    def standby(self, root: Path | None = None, *, port: int | None = None) -> PostgresServer:
        """A streaming-replication standby of this running server, not started yet: its data
        folder made by `pg_basebackup -R` (which writes `standby.signal` and the
        `primary_conninfo` to reach this server) on its own port. initdb's pg_hba.conf already
        lets the `ivr112` superuser replicate from loopback with its password."""
        replica = PostgresServer(root, host=self.host, port=port, prefix=self.prefix, password=self.password,
                                 max_connections=self.max_connections)
        replica._make_root()
        done = subprocess.run(
            replica._cmd(str(BIN / "pg_basebackup"), "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast",
                         "-h", self.host, "-p", str(self.port), "-U", USER),
            capture_output=True, text=True, timeout=START_TIMEOUT_S, env={**os.environ, "PGPASSWORD": self.password}, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_basebackup from port {self.port} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return replica

    def promote(self) -> None:
        """Make this standby a primary that takes writes (`pg_promote()`, waiting until it has)."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_promote(wait => true, wait_seconds => 60)").fetchone()
        if not row or row[0] is not True:
            raise RuntimeError(f"PostgreSQL on port {self.port} was not promoted in 60 s; its log:\n{self.log.read_text()[-3000:]}")

    def adopt(self) -> int | None:
        """The pid of this folder's running server (one started by an earlier command), or None."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        self.pid = pid if alive(pid) else None
        return self.pid

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Stop the server by its pid: SIGINT is PostgreSQL's fast shutdown, SIGKILL a crash."""
        if self.pid is None:
            return
        # Its backends hold the shared memory until they exit; a server started again while
        # one lingers refuses to start ("pre-existing shared memory block is still in use").
        # After a crash (SIGKILL) they go too, as they would with the machine.
        backends = _children(self.pid)
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            for child in backends:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(self.pid) or any(alive(child) for child in backends):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL (pid {self.pid}) did not stop in {STOP_TIMEOUT_S} s")
            time.sleep(POLL_S)
        if self._runner is not None:
            self._runner.wait(timeout=STOP_TIMEOUT_S)
            self._runner = None
        self.pid = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url_for(self, database: str, *, host: str | None = None) -> str:
        """The URL of one of the server's databases, as `store_url` and psycopg take it."""
        return f"postgresql://{USER}:{self.password}@{host or self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (the form `store_url` takes)."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)


def _ready(pidfile: Path) -> bool:
    """PostgreSQL writes its state as the pid file's 8th line: "ready" once it takes connections,
    "standby" once a standby takes read-only ones."""
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() in ("ready", "standby")


def _children(pid: int) -> list[int]:
    """The server's own processes (its backends and workers), from /proc; [] when unreadable."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def alive(pid: int) -> bool:
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
