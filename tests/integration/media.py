"""Audio a SIPp caller can play: a WAV turned into an RTP (G.711 u-law) capture, so a
test caller can really say where they are."""

from __future__ import annotations

import struct
import subprocess
import wave
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
