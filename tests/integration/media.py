"""Audio a SIPp caller can play: a WAV turned into an RTP (G.711 u-law) capture, so a
test caller can really say where they are; and what a SIPp caller hears, off the wire."""

from __future__ import annotations

import math
import select
import socket
import struct
import subprocess
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

FRAME = 160  # 20 ms at 8 kHz
PAYLOAD_PCMU = 0


def _ulaw(sample: int) -> int:
    """G.711 u-law of one 16-bit sample (audioop is deprecated, and gone in Python 3.13)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = max(0, sample.bit_length() - 8)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def lin2ulaw(pcm: bytes) -> bytes:
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    return bytes(_ulaw(s) for s in samples)


def speak(text: str, out: Path, *, voice: str = "id") -> Path:
    """espeak-ng says `text` into an 8 kHz mono 16-bit WAV."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    raw.unlink()
    return out


def wav_to_pcap(wav_path: Path, pcap_path: Path) -> float:
    """Write the WAV as RTP/PCMU packets in a pcap SIPp's play_pcap_audio replays; returns seconds."""
    with wave.open(str(wav_path), "rb") as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2, "8 kHz mono 16-bit WAV only"
        pcm = w.readframes(w.getnframes())
    ulaw = lin2ulaw(pcm)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    seq, ts, t_us = 1, 0, 0
    for i in range(0, len(ulaw), FRAME):
        payload = ulaw[i : i + FRAME].ljust(FRAME, b"\xff")
        rtp = struct.pack(">BBHII", 0x80, PAYLOAD_PCMU, seq & 0xFFFF, ts, 0x1C2B3A4D) + payload
        udp = struct.pack(">HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        out += struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(frame), len(frame)) + frame
        seq, ts, t_us = seq + 1, ts + FRAME, t_us + 20_000
    pcap_path.write_bytes(bytes(out))
    return len(ulaw) / 8000.0


def tone(out: Path, *, hz: float, seconds: float = 20.0, on_s: float = 0.6, off_s: float = 0.4, rate: int = 48000) -> Path:
    """A WAV of `hz` beeps (on_s on, off_s off): a voice the test can tell from any other by its pitch.
    Beeps rather than a steady tone, so a noise suppressor does not take it for noise."""
    period = on_s + off_s
    frames = bytearray()
    for n in range(int(seconds * rate)):
        t = n / rate
        on = (t % period) < on_s
        frames += struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * t)) if on else 0)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out


def ulaw2lin(data: bytes) -> list[int]:
    """16-bit samples of G.711 u-law bytes."""
    out = []
    for byte in data:
        u = ~byte & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)) - 0x84
        out.append(-magnitude if u & 0x80 else magnitude)
    return out


def pitch_share(samples: Sequence[int], hz: float, *, rate: int = 8000) -> float:
    """How much of the samples' energy is at `hz` (Goertzel, 0..1): near 1 for a tone of that
    pitch, near 0 for speech, music or silence."""
    total = sum(x * x for x in samples)
    if not samples or total == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return min(1.0, 2 * power / (len(samples) * total))


def tone_windows(samples: Sequence[int], hz: float, *, loud: int = 300, window: int = 320) -> int:
    """How many 40 ms windows of `samples` (8 kHz) are loud (RMS over `loud`) and mostly `hz`."""
    found = 0
    for i in range(0, len(samples) - window + 1, window):
        part = samples[i : i + window]
        if math.sqrt(sum(x * x for x in part) / window) > loud and pitch_share(part, hz) > 0.6:
            found += 1
    return found


@dataclass
class Ear:
    """What a SIPp caller hears: the G.711 u-law RTP arriving at its media port, read off the
    wire (a raw socket, so SIPp keeps its port; needs CAP_NET_RAW, as the stack's tests run).
    SIPp itself only plays and never keeps what it receives."""

    port: int
    samples: list[int] = field(default_factory=list)
    packets: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Ear:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._thread = threading.Thread(target=self._listen, args=(sock,), name=f"ear-{self.port}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _listen(self, sock: socket.socket) -> None:
        with sock:
            while not self._stop.is_set():
                if not select.select([sock], [], [], 0.2)[0]:
                    continue
                self._take(sock.recv(65535))

    def _take(self, packet: bytes) -> None:
        udp = (packet[0] & 0x0F) * 4
        if len(packet) < udp + 8 + 12 or struct.unpack_from(">H", packet, udp + 2)[0] != self.port:
            return
        rtp = udp + 8
        if packet[rtp] >> 6 != 2 or packet[rtp + 1] & 0x7F != PAYLOAD_PCMU:
            return  # not RTP, or a DTMF event
        start = rtp + 12 + 4 * (packet[rtp] & 0x0F)
        self.packets += 1
        self.samples.extend(ulaw2lin(packet[start:]))

    def heard(self, since: int = 0) -> list[int]:
        """The samples heard from sample `since` on (len(samples) marks a moment)."""
        return self.samples[since:]
