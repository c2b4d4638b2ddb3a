"""The INVITEs as Asterisk saw them, from its HEP3 capture (res_hep_pjsip) on 127.0.0.1.

Asterisk 22.10's own PIDF-LO reader (res_geolocation) crashes the server on some
well-formed bodies, so the carriers' incoming geolocation profile discards what the INVITE
carried and the app reads the PIDF-LO itself, from the copy of the INVITE that Asterisk
sends here. Strict: a packet that is not HEP3, is cut short, has a wrong capture password
or is too large is logged and skipped; nothing here can stop the app.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

HEP_MAGIC = b"HEP3"
CHUNK_AUTH_KEY = 0x000E
CHUNK_PAYLOAD = 0x000F
MAX_PACKET_BYTES = 65_535
MAX_CHUNKS = 64
MAX_CALL_ID_CHARS = 256
KEEP_SECONDS = 60.0
MAX_INVITES = 2000
WAIT_STEP_S = 0.02


_LENGTH = struct.Struct("!H")
_CHUNK = struct.Struct("!HHH")  # vendor, type, length (the 6-byte header included)


class HepError(ValueError):
    """A packet that is not a usable HEP3 SIP capture."""


def parse_hep(data: bytes, password: str = "") -> bytes:
    """The captured SIP message of one HEP3 packet; HepError when the packet is malformed,
    carries no payload, or (with a password) has no or a wrong capture password."""
    if len(data) > MAX_PACKET_BYTES:
        raise HepError(f"packet of {len(data)} bytes refused (at most {MAX_PACKET_BYTES})")
    if len(data) < 6 or data[:4] != HEP_MAGIC:
        raise HepError("not a HEP3 packet")
    (total,) = _LENGTH.unpack_from(data, 4)
    if total != len(data):
        raise HepError(f"HEP3 length {total} but {len(data)} bytes received")
    payload: bytes | None = None
    auth: bytes | None = None
    i, chunks = 6, 0
    while i < total:
        chunks += 1
        if chunks > MAX_CHUNKS:
            raise HepError(f"more than {MAX_CHUNKS} chunks")
        if i + 6 > total:
            raise HepError(f"chunk header cut short at byte {i}")
        _vendor, kind, length = _CHUNK.unpack_from(data, i)
        if length < 6 or i + length > total:
            raise HepError(f"chunk of type {kind:#06x} with length {length} at byte {i} does not fit")
        if kind == CHUNK_PAYLOAD:  # only the two chunks read are copied out
            if payload is not None:
                raise HepError("two payload chunks")
            payload = data[i + 6 : i + length]
        elif kind == CHUNK_AUTH_KEY:
            auth = data[i + 6 : i + length]
        i += length
    if password and (auth is None or not hmac.compare_digest(auth.rstrip(b"\0"), password.encode())):
        raise HepError("capture password missing or wrong")
    if not payload:
        raise HepError("no SIP payload chunk")
    return payload


def sip_invite_call_id(message: bytes) -> str | None:
    """The Call-ID of a SIP INVITE request; None for any other message."""
    first = message.split(b"\r\n", 1)[0]
    if not first.startswith(b"INVITE ") or not first.rstrip().endswith(b"SIP/2.0"):
        return None
    call_id = sip_header(message, "Call-ID", "i")
    return call_id if 0 < len(call_id) <= MAX_CALL_ID_CHARS else None


def sip_header(message: bytes, *names: str) -> str:
    """The first value of a header (any of `names`, compact forms included) of a SIP message; ""."""
    wanted = {n.lower().encode() for n in names}
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in wanted:
            return value.strip().decode("utf-8", "replace")
    return ""


def sip_body(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in message else b""


LEG_HEADER = "X-Ivr112-Leg"


@dataclass(frozen=True)
class LegProgress:
    """What an agency trunk answered to our INVITE, as the capture saw it."""

    provisional: int | None = None  # the highest 1xx (100 Trying, 180 Ringing, 183 Session Progress)
    final: int | None = None  # the final status code, if one came
    reason: str = ""  # its reason phrase


def sip_status(message: bytes) -> tuple[int, str] | None:
    """(code, reason) of a SIP response to an INVITE; None for a request or another method's response."""
    first = message.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit() or len(parts[1]) != 3:
        return None
    if not sip_header(message, "CSeq").upper().endswith("INVITE"):
        return None
    return int(parts[1]), parts[2].strip() if len(parts) > 2 else ""


class HepStore(asyncio.DatagramProtocol):
    """INVITEs by Call-ID, for KEEP_SECONDS, at most MAX_INVITES (the oldest go first); and
    for the app's own trunk legs (INVITEs carrying LEG_HEADER), the responses they got."""

    def __init__(self, password: str = "", *, keep_s: float = KEEP_SECONDS, max_invites: int = MAX_INVITES) -> None:
        self.password = password
        self.keep_s = keep_s
        self.max_invites = max_invites
        self.skipped = 0
        self._invites: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._legs: OrderedDict[str, str] = OrderedDict()  # leg id -> Call-ID
        self._progress: OrderedDict[str, LegProgress] = OrderedDict()  # Call-ID of a leg -> its answers
        self._arrived = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None

    # Set by the text desk: every SIP MESSAGE request the capture sees.
    on_message: Callable[[bytes], None] | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen; a port already taken is logged (PIDF-LO by value is then not read), never fatal."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        except OSError as exc:
            log.error("HEP capture not listening on %s:%d, PIDF-LO by value will not be read: %s", host, port, exc)
            return
        self._transport = transport
        log.info("HEP capture listening on %s:%d", host, port)

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self.feed(data)
        except Exception as exc:  # never the end of the listener
            self.skipped += 1
            log.warning("HEP packet from %s skipped: %r", addr, exc)

    def feed(self, data: bytes, now: float | None = None) -> str | None:
        """Keep the packet's INVITE; returns its Call-ID (None for anything else)."""
        try:
            message = parse_hep(data, self.password)
        except HepError as exc:
            self.skipped += 1
            log.warning("HEP packet skipped: %s", exc)
            return None
        call_id = sip_invite_call_id(message)
        if call_id is None:
            if self.on_message is not None and message.startswith(b"MESSAGE "):
                self.on_message(message)  # a text Asterisk refused (multipart): the text desk reads it
            self._response(message)
            return None
        now = time.monotonic() if now is None else now
        leg = sip_header(message, LEG_HEADER)
        if leg and len(leg) <= MAX_CALL_ID_CHARS:
            self._legs.pop(leg, None)
            self._legs[leg] = call_id
            self._progress.setdefault(call_id, LegProgress())
            while len(self._legs) > self.max_invites:
                _old_leg, old_call = self._legs.popitem(last=False)
                self._progress.pop(old_call, None)
        self._invites.pop(call_id, None)
        self._invites[call_id] = (now, message)
        self._expire(now)
        self._arrived.set()
        self._arrived = asyncio.Event()
        return call_id

    def _response(self, message: bytes) -> None:
        """Note a response to one of our trunk legs' INVITEs (others are not kept)."""
        if not self._progress or not message.startswith(b"SIP/2.0 "):
            return  # no leg watched, or a request: nothing to read (most packets)
        call_id = sip_header(message, "Call-ID", "i")
        known = self._progress.get(call_id)
        if known is None:
            return
        status = sip_status(message)
        if status is None:
            return
        code, reason = status
        if code < 200:
            self._progress[call_id] = LegProgress(max(code, known.provisional or 0), known.final, known.reason)
        elif known.final is None:
            self._progress[call_id] = LegProgress(known.provisional, code, reason)

    def leg_progress(self, leg: str) -> LegProgress | None:
        """What the trunk answered to the INVITE of our leg `leg`; None when its INVITE was
        never captured (the capture is not working, so nothing can be told from silence)."""
        call_id = self._legs.get(leg)
        return self._progress.get(call_id) if call_id is not None else None

    @property
    def listening(self) -> bool:
        return self._transport is not None

    def _expire(self, now: float) -> None:
        while self._invites:
            first, (at, _msg) = next(iter(self._invites.items()))
            if len(self._invites) > self.max_invites or now - at > self.keep_s:
                del self._invites[first]
            else:
                break

    def __len__(self) -> int:
        return len(self._invites)

    async def invite(self, call_id: str, wait: float = 0.5) -> bytes | None:
        """The INVITE of this Call-ID, waiting up to `wait` seconds for it to arrive."""
        deadline = time.monotonic() + wait
        while True:
            self._expire(time.monotonic())
            found = self._invites.get(call_id)
            if found is not None:
                return found[1]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, 0.1))
            except TimeoutError:
                pass
