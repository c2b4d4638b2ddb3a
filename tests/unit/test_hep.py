"""HEP3 capture of the INVITEs (ari_app/calls/hep.py): strict parsing, bounded store."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

from ari_app.calls.hep import HepError, HepStore, parse_hep, sip_body, sip_header, sip_invite_call_id

INVITE = (
    b"INVITE sip:112@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061\r\nCall-ID: abc-1@carrier.example\r\n"
    b"Content-Type: multipart/mixed;boundary=b1\r\nContent-Length: 10\r\n\r\n--b1\r\nbody"
)


def chunk(kind: int, body: bytes, vendor: int = 0) -> bytes:
    return struct.pack("!HHH", vendor, kind, 6 + len(body)) + body


def packet(*chunks: bytes) -> bytes:
    rest = b"".join(chunks)
    return b"HEP3" + struct.pack("!H", 6 + len(rest)) + rest


def good(message: bytes = INVITE, password: str = "pw") -> bytes:
    return packet(chunk(0x0001, b"\x02"), chunk(0x0007, struct.pack("!I", 1)), chunk(0x000E, password.encode()),
                  chunk(0x000F, message), chunk(0x0011, b"abc-1@carrier.example"))


def test_a_good_packet_gives_its_sip_message_and_call_id() -> None:
    message = parse_hep(good(), "pw")
    assert message == INVITE
    assert sip_invite_call_id(message) == "abc-1@carrier.example"
    assert sip_header(message, "Content-Type", "c") == "multipart/mixed;boundary=b1"
    assert sip_body(message) == b"--b1\r\nbody"


def test_compact_call_id_and_non_invites() -> None:
    assert sip_invite_call_id(INVITE.replace(b"Call-ID:", b"i:")) == "abc-1@carrier.example"
    assert sip_invite_call_id(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n") is None
    assert sip_invite_call_id(b"ACK sip:112@h SIP/2.0\r\nCall-ID: x\r\n\r\n") is None
    assert sip_invite_call_id(b"INVITE sip:112@h SIP/2.0\r\nCall-ID: " + b"x" * 300 + b"\r\n\r\n") is None


@pytest.mark.parametrize("cut", [3, 6, 8, 15, 40, -1])
def test_truncated_packets_are_refused(cut: int) -> None:
    data = good()[:cut]
    with pytest.raises(HepError):
        parse_hep(data, "pw")
    # the same, with the total length fixed to what is there: the last chunk does not fit
    if len(data) > 6:
        with pytest.raises(HepError):
            parse_hep(data[:4] + struct.pack("!H", len(data)) + data[6:], "pw")


def test_wrong_or_missing_password_is_refused() -> None:
    with pytest.raises(HepError, match="password"):
        parse_hep(good(password="nope"), "pw")
    with pytest.raises(HepError, match="password"):
        parse_hep(packet(chunk(0x000F, INVITE)), "pw")
    assert parse_hep(packet(chunk(0x000F, INVITE)), "") == INVITE  # no password set: none checked


@pytest.mark.parametrize("data", [
    b"", b"HEP3", b"HEP2" + b"\0" * 20, b"\xff" * 100, b"HEP3\x00\x06",
    packet(chunk(0x0001, b"\x02")),  # no payload
    packet(chunk(0x000F, INVITE), chunk(0x000F, INVITE)),  # two payloads
    b"HEP3" + struct.pack("!H", 12) + struct.pack("!HHH", 0, 0x000F, 2),  # chunk shorter than its header
    packet(*[chunk(0x0001, b"\x02")] * 100, chunk(0x000F, INVITE)),  # too many chunks
    b"HEP3" + b"\xff" * 70_000,
])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(HepError):
        parse_hep(data, "")


def test_the_store_keeps_invites_only_bounded_and_skips_garbage() -> None:
    async def run() -> None:
        store = HepStore("pw", keep_s=60, max_invites=3)
        t0 = time.monotonic()
        assert store.feed(b"garbage") is None and store.skipped == 1
        assert store.feed(good(password="bad")) is None and store.skipped == 2
        assert store.feed(good(b"SIP/2.0 100 Trying\r\nCall-ID: abc-1@carrier.example\r\n\r\n")) is None
        assert len(store) == 0
        for i in range(5):
            store.feed(good(INVITE.replace(b"abc-1", f"call-{i}".encode())), now=t0 + i)
        assert len(store) == 3
        assert await store.invite("call-0@carrier.example", wait=0) is None
        assert await store.invite("call-4@carrier.example", wait=0) is not None
        store.feed(good(), now=t0 + 1_000.0)  # much later: the others expire
        assert len(store) == 1
        store.datagram_received(b"\x00" * 5, ("127.0.0.1", 1))  # never raises
        assert store.skipped == 3

    asyncio.run(run())


def test_invite_waits_briefly_for_a_late_packet() -> None:
    async def run() -> None:
        store = HepStore("pw")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, store.feed, good())
        assert await store.invite("abc-1@carrier.example", wait=1.0) == INVITE
        assert await store.invite("never@carrier.example", wait=0.1) is None

    asyncio.run(run())


def test_the_listener_receives_packets_on_localhost() -> None:
    import socket

    async def run() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        store = HepStore("pw")
        await store.start("127.0.0.1", port)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                out.sendto(b"junk", ("127.0.0.1", port))
                out.sendto(good(), ("127.0.0.1", port))
            assert await store.invite("abc-1@carrier.example", wait=2.0) == INVITE
        finally:
            store.stop()

    asyncio.run(run())


def _leg_invite(leg: str, call_id: str) -> bytes:
    return (f"INVITE sip:110@127.0.0.1:5071 SIP/2.0\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"X-Ivr112-Leg: {leg}\r\nContent-Length: 0\r\n\r\n").encode()


def _response(code: int, reason: str, call_id: str, method: str = "INVITE") -> bytes:
    return f"SIP/2.0 {code} {reason}\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n".encode()


def test_what_a_trunk_answered_to_our_invite_is_kept_by_leg() -> None:
    store = HepStore("pw")
    assert store.leg_progress("c1-police-1") is None  # its INVITE never seen: nothing can be told
    store.feed(good(_leg_invite("c1-police-1", "out-1")))
    store.feed(good(_leg_invite("c1-police-2", "out-2")))
    silent = store.leg_progress("c1-police-1")
    assert silent is not None and silent.provisional is None and silent.final is None
    store.feed(good(_response(100, "Trying", "out-2")))
    store.feed(good(_response(180, "Ringing", "out-2")))
    store.feed(good(_response(100, "Trying", "out-2")))  # a retransmission: the highest stays
    store.feed(good(_response(503, "Service Unavailable", "out-2")))
    store.feed(good(_response(200, "OK", "out-2", method="BYE")))  # not about the INVITE
    store.feed(good(_response(180, "Ringing", "someone-elses-call")))  # not ours: not kept
    answered = store.leg_progress("c1-police-2")
    assert answered is not None and (answered.provisional, answered.final, answered.reason) == (180, 503, "Service Unavailable")
    assert store.leg_progress("c1-police-1") == silent


def test_legs_are_bounded() -> None:
    store = HepStore("pw", max_invites=3)
    for i in range(10):
        store.feed(good(_leg_invite(f"leg-{i}", f"call-{i}")))
    assert store.leg_progress("leg-0") is None and store.leg_progress("leg-9") is not None
