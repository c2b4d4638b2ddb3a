"""The pure part of text to 112: what a person sees of a hostile text, how a DEC112
multipart MESSAGE is read, and when an undelivered reply is tried again."""

from __future__ import annotations

import pytest

from ivr.texts import TextRefused, clean_text, parse_multipart, quick_reply, retry_after, sip_address, sip_user

DEC112 = (
    b"--b\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nTolong\r\n"
    b"--b\r\nContent-Type: application/pidf+xml\r\nContent-ID: <loc@x>\r\n\r\n<presence/>\r\n--b--\r\n"
)


def test_markup_stays_characters_and_controls_go() -> None:
    got = clean_text("<b>api</b>\x07\u202e!", max_chars=100)
    assert got.text == "<b>api</b>!"
    assert "control characters removed" in got.notes and "markup kept as plain characters" in got.notes


def test_binary_empty_and_long_texts() -> None:
    with pytest.raises(TextRefused):
        clean_text(b"\x00\x01\x02", max_chars=10)
    with pytest.raises(TextRefused):
        clean_text(b"\xff\xfe\xfa\xfb", max_chars=10)
    with pytest.raises(TextRefused):
        clean_text("  \x01 ", max_chars=10)
    assert clean_text("a" * 20, max_chars=5).text == "aaaaa"


def test_a_dec112_message_gives_its_text_pidf_and_call_id() -> None:
    parts = parse_multipart("multipart/mixed;boundary=b", DEC112,
                            {"call-info": "<urn:emergency:uid:callid:abc123:dec112.at>;purpose=EmergencyCallData.CallId"})
    assert parts.text == "Tolong" and parts.pidf == b"<presence/>" and parts.call_id == "abc123:dec112.at"


def test_broken_multipart_is_refused() -> None:
    with pytest.raises(TextRefused):
        parse_multipart("multipart/mixed;boundary=zz", DEC112)
    with pytest.raises(TextRefused):
        parse_multipart("text/plain", b"hi")


def test_quick_replies_retries_and_sip_addresses() -> None:
    assert quick_reply("where", "id") == "Di mana lokasi Anda?"
    assert quick_reply("safe", "en") == "Are you safe?"
    assert [retry_after(n, first_s=5, longest_s=30) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]
    assert sip_user('"x" <sip:0812@10.0.0.1:5060>;tag=1') == "0812"
    assert sip_address('"x" <sip:0812@10.0.0.1:5060>;tag=1') == "sip:0812@10.0.0.1:5060"


def test_a_journal_line_is_read_back_whatever_bytes_the_sender_sent_and_a_broken_one_is_refused() -> None:
    import base64

    from ivr.texts import parse_journal_line

    def b64(raw: bytes) -> str:
        return base64.b64encode(b"." + raw).decode()  # each value behind the journal's mark, as the dialplan writes it

    body = "Tolong <b>\u00e9 \u202e".encode() + b"\xff"
    fields = [b64(v) for v in (b"<sip:0812@h>", b"<sip:112@h>", b"", b"c@x", b"multipart/mixed;boundary=b", b"", body)]
    line = f"v1 2026-12-01T10:00:00.000+00:00 carrier-lokal {' '.join(fields)}"
    entry = parse_journal_line(line.encode())
    assert (entry.from_uri, entry.contact, entry.call_id, entry.body) == ("<sip:0812@h>", "", "c@x", body)
    assert (entry.content_type, entry.call_info) == ("multipart/mixed;boundary=b", "")
    assert entry.at == "2026-12-01T10:00:00.000+00:00" and entry.endpoint == "carrier-lokal"
    unmarked = line.replace(fields[3], base64.b64encode(b"c@x").decode())
    for broken in (b"", b"v1 cut", line.encode().replace(b"v1", b"v2", 1), line.encode()[:-3] + b"!!!", unmarked.encode()):
        with pytest.raises(TextRefused):
            parse_journal_line(broken)
