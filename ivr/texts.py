"""Text to 112, the pure part: what a received text is once cleaned, how a DEC112-style
multipart MESSAGE is read, the automatic first answer and the operators' quick replies,
and when a reply is tried again. No I/O here: the doors (ari_app/texts/) feed it bytes.

A text is shown to a person, never executed or rendered: it is decoded as UTF-8 (bad bytes
replaced), control characters are dropped, it is cut at a maximum length, and what was done
is said in `notes` so the door can log it. Markup stays as the characters the sender typed.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from ivr.errors import Ivr112Error

DOORS = ("sip", "sms")
TEXT_FLAG = "text"  # an incident's flag: it has a text conversation
TEXT_CHANNEL_PREFIX = "text-"  # the channel id of an incident a text opened: text-<door>-<number>-<time>
MAX_MULTIPART_BYTES = 64 * 1024
MAX_PARTS = 8
# Characters a person never types: C0/C1 controls except tab and newline, and bidi overrides
# (they make a text read in another order than it was sent).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
_CALL_ID = re.compile(r"urn:emergency:uid:callid:([^;>\s]{1,128})", re.IGNORECASE)

AUTO_REPLY = {
    "id": "112: Pesan Anda sudah kami terima. Petugas akan segera membalas. Jika bisa, kirim lokasi Anda.",
    "en": "112: We received your message. An operator will answer you shortly. If you can, send your location.",
}

# What an operator sends by default to open a conversation with a silent voice caller's
# number (the caller may not be able to speak; UK 999 operators do the same).
START_TEXT = {
    "id": "112: Kami menerima panggilan tanpa suara dari nomor ini. Jika Anda butuh bantuan dan tidak bisa bicara, "
          "balas SMS ini.",
    "en": "112: We had a silent call from this number. If you need help and cannot speak, reply to this SMS.",
}

# The console's quick replies, Indonesian first; the key is what the console sends back.
QUICK_REPLIES: dict[str, dict[str, str]] = {
    "where": {"id": "Di mana lokasi Anda?", "en": "Where are you?"},
    "safe": {"id": "Apakah Anda aman?", "en": "Are you safe?"},
    "coming": {"id": "Bantuan sedang menuju", "en": "Help is on the way"},
    "what": {"id": "Apa yang terjadi?", "en": "What happened?"},
}


class TextRefused(Ivr112Error):
    """A text that cannot be taken: nothing readable in it, or a multipart body that is broken."""


@dataclass(frozen=True)
class CleanText:
    """A received text as the operator will see it, and what was done to it on the way."""

    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextParts:
    """What a DEC112 / ETSI TS 103 698 multipart MESSAGE carries that we use."""

    text: str
    pidf: bytes | None = None
    call_id: str = ""


def clean_text(raw: bytes | str, *, max_chars: int) -> CleanText:
    """The text cleaned for a person (see the module's docstring). Raises TextRefused when
    nothing readable is left, or when it is plainly binary (NUL bytes or mostly undecodable)."""
    notes: list[str] = []
    if isinstance(raw, bytes):
        if b"\x00" in raw:
            raise TextRefused("binary content (NUL bytes) is not a text")
        text = raw.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad:
            if bad * 4 > len(text):
                raise TextRefused(f"not UTF-8 text ({bad} undecodable bytes of {len(raw)})")
            notes.append(f"{bad} undecodable bytes replaced")
    else:
        text = raw
    stripped = _CONTROL.sub("", text.replace("\r\n", "\n"))
    if stripped != text.replace("\r\n", "\n"):
        notes.append("control characters removed")
    text = stripped.strip()
    if _MARKUP.search(text):
        notes.append("markup kept as plain characters")
    if len(text) > max_chars:
        notes.append(f"cut at {max_chars} of {len(text)} characters")
        text = text[:max_chars]
    if not text:
        raise TextRefused("the message has no text")
    return CleanText(text, tuple(notes))


def parse_multipart(content_type: str, body: bytes, headers: dict[str, str] | None = None) -> TextParts:
    """The text, the PIDF-LO (if any) and the DEC112 call id of a multipart/mixed MESSAGE.

    `headers` are the SIP request's (names in any case): Call-Info gives the call id.
    Raises TextRefused for a body that is not multipart, too big, or without a text part."""
    if len(body) > MAX_MULTIPART_BYTES:
        raise TextRefused(f"multipart body of {len(body)} bytes refused (at most {MAX_MULTIPART_BYTES})")
    if not content_type.lower().startswith("multipart/"):
        raise TextRefused(f"content type {content_type[:60]!r} is not multipart")
    doc = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body,
                             policy=policy.default)
    if not isinstance(doc, EmailMessage) or not doc.is_multipart():
        raise TextRefused("multipart body without parts (boundary missing or wrong)")
    text: bytes | None = None
    pidf: bytes | None = None
    for index, part in enumerate(doc.iter_parts()):
        if index >= MAX_PARTS:
            break
        kind = part.get_content_type()
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if kind == "text/plain" and text is None:
            text = payload
        elif kind == "application/pidf+xml" and pidf is None:
            pidf = payload
    if text is None:
        raise TextRefused("multipart MESSAGE without a text/plain part")
    call_info = next((v for k, v in (headers or {}).items() if k.lower() == "call-info"), "")
    match = _CALL_ID.search(call_info)
    return TextParts(text.decode("utf-8", errors="replace"), pidf, match.group(1) if match else "")


def sip_user(uri: str) -> str:
    """The user part of a SIP From (`"x" <sip:0812@host:5060>;tag=..` → `0812`); "" if none."""
    match = re.search(r"sips?:([^@;>\s]+)@", uri)
    return match.group(1) if match else ""


def sip_address(uri: str) -> str:
    """The bare SIP URI of a From or Contact (`"x" <sip:0812@host:5060>;tag=1` → `sip:0812@host:5060`)."""
    match = re.search(r"<(sips?:[^>]+)>", uri)
    bare = match.group(1) if match else uri.split(";", 1)[0].strip()
    return bare if bare.startswith(("sip:", "sips:")) else ""


def retry_after(attempts: int, *, first_s: float, longest_s: float) -> float:
    """Seconds before the next try of a reply that failed `attempts` times (doubling, capped)."""
    return float(min(longest_s, first_s * 2 ** max(0, attempts - 1)))


def quick_reply(key: str, language: str) -> str:
    """The quick reply `key` in `language` (Indonesian when the language has none)."""
    texts = QUICK_REPLIES.get(key)
    if texts is None:
        raise TextRefused(f"no quick reply {key!r}; known: {', '.join(QUICK_REPLIES)}")
    return texts.get(language, texts["id"])


def auto_reply(language: str) -> str:
    """The first automatic answer: Indonesian, with English after it for a visitor."""
    return AUTO_REPLY["id"] if language == "id" else f"{AUTO_REPLY['id']}\n{AUTO_REPLY['en']}"


# The texts' journal ---------------------------------------------------------------------
# Asterisk's dialplan writes every SIP MESSAGE a carrier sends to 112 as one line of a daily
# file, before the app is told (ari_app/asterisk/render.py writes that dialplan): the app
# takes the texts from there, so a text that came while the app (or its store) was away is
# taken when it is back. One line: JOURNAL_VERSION, the time, the carrier's endpoint, then
# From, To, Contact, Call-ID, the original content type (EDGE_CONTENT_TYPE, set by the SIP
# edge for a multipart MESSAGE it passes on as text/plain), Call-Info and the body, each
# base64 (whatever bytes the sender put there) of JOURNAL_MARK and the value.
JOURNAL_VERSION = "v1"
JOURNAL_MARK = "."
JOURNAL_SUFFIX = ".journal"
_JOURNAL_FIELDS = ("from_uri", "to_uri", "contact", "call_id", "content_type", "call_info", "body")
# The header with which the SIP edge (config/kamailio/edge.cfg) keeps a multipart MESSAGE's
# own Content-Type when it hands it to Asterisk as text/plain (Asterisk takes no other).
EDGE_CONTENT_TYPE = "X-Ivr112-Content-Type"


@dataclass(frozen=True)
class JournalEntry:
    """One SIP MESSAGE as Asterisk's dialplan wrote it in the texts' journal."""

    at: str
    endpoint: str
    from_uri: str
    to_uri: str
    contact: str
    call_id: str
    content_type: str
    call_info: str
    body: bytes


def parse_journal_line(line: bytes) -> JournalEntry:
    """One journal line (without its newline). Raises TextRefused for a line that is not one
    (a line cut by a crash of Asterisk, or written by something else)."""
    fields = line.rstrip(b"\r").split(b" ")
    if len(fields) != 3 + len(_JOURNAL_FIELDS) or fields[0].decode("latin-1") != JOURNAL_VERSION:
        raise TextRefused(f"journal line of {len(fields)} fields is not a {JOURNAL_VERSION} line: {line[:80]!r}")
    try:
        decoded = [base64.b64decode(f, validate=True) for f in fields[3:]]
        at, endpoint = fields[1].decode("ascii"), fields[2].decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TextRefused(f"journal line not readable ({exc}): {line[:80]!r}") from None
    if not all(d.startswith(JOURNAL_MARK.encode()) for d in decoded):
        raise TextRefused(f"journal line with a field not marked {JOURNAL_MARK!r}: {line[:80]!r}")
    decoded = [d[len(JOURNAL_MARK):] for d in decoded]
    text = {name: value.decode("utf-8", errors="replace") for name, value in zip(_JOURNAL_FIELDS[:-1], decoded[:-1], strict=True)}
    return JournalEntry(at=at, endpoint=endpoint, body=decoded[-1], **text)


def journal_prefix(node: str, file_name: str) -> str:
    """What the keys of one journal file's lines start with. `node`: the cluster node's name
    (every node has its own journal and all share the store), empty on a single machine."""
    return f"journal:{node}/{file_name}:" if node else f"journal:{file_name}:"


def journal_key(node: str, file_name: str, offset: int) -> str:
    """The key a journal line is kept under: its node, file and byte offset (a text is kept once)."""
    return f"{journal_prefix(node, file_name)}{offset}"
