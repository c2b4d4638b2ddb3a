"""A second host for a test: a network namespace of its own joined to this machine by a
veth pair, each end with a private address of a /30 the test picks. A server the test starts
binds to the host end (an address that exists only while the test runs, reachable only from
that namespace); the test's clients run inside the namespace (`run`). Everything is named
after the test's pid and removed by name at the end, even when the test fails.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

IP_TIMEOUT_S = 10.0
POOL = ipaddress.ip_network("10.112.0.0/16")  # the /30s a test may take


@dataclass(frozen=True)
class Peer:
    netns: str
    host_link: str  # the veth end on this machine, with `host`
    host: str  # the server's address
    peer: str  # the namespace's own address: where the test's requests come from

    def run(self, argv: Sequence[str], *, timeout: float = 120.0, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """A program run inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], input=stdin, capture_output=True,
                              text=True, timeout=timeout, check=False)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {res.stderr.strip()}")
    return res


def _taken() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address or a route in."""
    out: list[ipaddress.IPv4Network] = []
    for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            out.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest and dest[0].isdigit():
            out.append(ipaddress.IPv4Network(dest, strict=False))
    return out


def free_slash30(pid: int) -> ipaddress.IPv4Network:
    """A /30 of POOL that clashes with no address or route here, the first tried chosen by pid."""
    slots = list(POOL.subnets(new_prefix=30))
    taken = _taken()
    for i in range(len(slots)):
        net = slots[(pid + i) % len(slots)]
        if not any(net.overlaps(t) for t in taken if t.prefixlen > 0):
            return net
    raise RuntimeError(f"every /30 of {POOL} clashes with an address or route of this machine")


def _cannot_make(netns: str) -> str:
    """Why this test cannot make a namespace ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace and a veth pair (ip netns add)"
    res = _ip("netns", "add", netns, check=False)
    if res.returncode != 0:
        return f"cannot create a network namespace: `ip netns add {netns}`: {res.stderr.strip()}"
    return ""


@contextmanager
def private_peer(prefix: str) -> Iterator[Peer]:
    """A namespace `<prefix><pid>` joined by a veth pair; pytest.skip when it cannot be made."""
    pid = os.getpid()
    name = f"{prefix}{pid}"
    net = free_slash30(pid)
    host, peer = (str(a) for a in net.hosts())
    made = Peer(netns=name, host_link=f"{name}a", host=host, peer=peer)
    if why := _cannot_make(name):
        pytest.skip(why)
    try:
        _ip("link", "add", made.host_link, "type", "veth", "peer", "name", f"{name}b", "netns", name)
        _ip("addr", "add", f"{host}/30", "dev", made.host_link)
        _ip("link", "set", made.host_link, "up")
        _ip("-n", name, "addr", "add", f"{peer}/30", "dev", f"{name}b")
        _ip("-n", name, "link", "set", f"{name}b", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield made
    finally:
        _ip("netns", "del", name, check=False)  # takes its veth end, and so the pair, with it
        if _ip("link", "show", made.host_link, check=False).returncode == 0:
            _ip("link", "del", made.host_link, check=False)
