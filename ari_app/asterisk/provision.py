"""Make the Debian sid root file system that holds Asterisk 22, once; later runs reuse it.

Debian 12 has no Asterisk package and sid's needs a newer C library, so Asterisk lives in
its own root (debootstrap), entered with chroot. This needs root, or sudo without a password.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ivr.errors import AsteriskError

log = logging.getLogger(__name__)

MARKER = ".ivr112-ready"
SUITE = "sid"
PACKAGES = ("asterisk",)


def privileged() -> list[str]:
    """The command prefix that runs a command as root: none when root, else sudo -n."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "-n"]
    raise AsteriskError(
        "Asterisk runs in its own root file system and needs root to enter it: run as root, "
        "or install sudo and allow this user to run it without a password"
    )


def _run(cmd: list[str], what: str, logfile: Path) -> None:
    log.info("%s: %s", what, " ".join(cmd))
    with logfile.open("ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        raise AsteriskError(f"{what} failed (exit {proc.returncode}); last lines of {logfile}:\n" + "\n".join(tail))


def is_ready(root: Path) -> bool:
    return (root / MARKER).exists() and (root / "usr/sbin/asterisk").exists()


def ensure_hosts(root: Path) -> None:
    """Give the root an /etc/hosts naming this host, as an installed Debian has.

    debootstrap writes none. Asterisk then looks its own host name up in DNS for every
    call (and, failing, A.ROOT-SERVERS.NET), on one thread: a lookup that times out (5 s)
    holds up every call's SIP handling (issue 7's benchmark: answer p99 of 30 s at 20
    calls/s, plain dialplan alike).
    """
    hosts = root / "etc" / "hosts"
    if (root / "etc").is_dir() and not hosts.exists():
        name = socket.gethostname()
        text = f"127.0.0.1\tlocalhost {name}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        subprocess.run(privileged() + ["tee", str(hosts)], input=text, text=True, stdout=subprocess.DEVNULL, check=True)


def ensure_root(root: Path) -> bool:
    """Provision `root` if it is not ready yet; return True when it was made now.

    Several processes may ask at once (test workers side by side, each starting its own
    Asterisk instance): one builds the root under a file lock, the others wait for it and
    then find it ready.
    """
    if is_ready(root):
        ensure_hosts(root)
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_ready(root):
            ensure_hosts(root)
            return False
        return _provision(root)


def _clear_partial(root: Path, sudo: list[str]) -> None:
    """Remove what a debootstrap that was cut short left; debootstrap refuses to extract over it."""
    if not root.exists() or not any(root.iterdir()):
        return
    mounts = Path("/proc/mounts").read_text().split() if Path("/proc/mounts").exists() else []
    if any(m == str(root) or m.startswith(f"{root}/") for m in mounts):
        raise AsteriskError(f"{root} is half made and has file systems mounted in it: unmount them, remove it, try again")
    log.warning("removing the half-made root %s (an earlier debootstrap did not finish)", root)
    subprocess.run(sudo + ["rm", "-rf", "--one-file-system", str(root)], check=True)


def _provision(root: Path) -> bool:
    sudo = privileged()
    if not shutil.which("debootstrap"):
        raise AsteriskError("debootstrap is not installed: run `make deps` (or apt-get install debootstrap) first")
    logfile = root.parent / f"{root.name}.provision.log"
    started = time.monotonic()
    if not (root / "usr/bin/apt-get").exists():
        _clear_partial(root, sudo)
        _run(sudo + ["debootstrap", "--variant=minbase", SUITE, str(root)], "debootstrap of Debian sid", logfile)
    # sid's Release file may be past its Valid-Until date on the mirror; the check must be off.
    apt = ["chroot", str(root), "apt-get", "-o", "Acquire::Check-Valid-Until=false"]
    _run(sudo + apt + ["update", "-q"], "apt-get update inside the Asterisk root", logfile)
    _run(
        sudo + ["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o",
                "Acquire::Check-Valid-Until=false", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        "apt-get install asterisk inside the root",
        logfile,
    )
    version = subprocess.run(sudo + ["chroot", str(root), "asterisk", "-V"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        raise AsteriskError(f"Asterisk was installed in {root} but does not run: {version.stderr.strip()}")
    ensure_hosts(root)
    subprocess.run(sudo + ["sh", "-c", f"echo '{version.stdout.strip()}' > '{root / MARKER}'"], check=True)
    log.info("Asterisk root ready in %.0f s: %s", time.monotonic() - started, version.stdout.strip())
    return True


def asterisk_version(root: Path) -> str:
    marker = root / MARKER
    return marker.read_text().strip() if marker.exists() else ""
