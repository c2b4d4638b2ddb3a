"""What a host name or address in a URL or a request is, without looking it up."""

from __future__ import annotations

import ipaddress


def loopback_host(host: str) -> bool:
    """Whether `host` (a name or an address, brackets stripped) is this machine: localhost or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
