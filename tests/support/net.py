"""Free loopback ports for the processes a test starts (each test session has its own)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_media_port() -> int:
    """A UDP port p with p..p+3 free: SIPp binds audio RTP/RTCP at p, p+1 and video at p+2, p+3."""
    for _ in range(50):
        base = free_port(socket.SOCK_DGRAM) & ~1
        if base + 3 > 65535:
            continue
        held = []
        try:
            for p in range(base, base + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no four free UDP ports in a row for SIPp's media")
