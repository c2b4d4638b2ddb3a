"""The texts' journal as the app reads it (ari_app/texts/journal.py), on both engines: the
lines Asterisk's dialplan wrote are kept in order and once, even when read again after a
restart; a line still being written waits; a line that is no journal line is skipped with a
log line; a line the store cannot take waits for it."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ari_app.store.texts import TextTables
from ari_app.store.writer import AsyncStore
from ari_app.texts.journal import Journal
from ivr.texts import JournalEntry

AT = "2026-12-01T10:00:00.000+00:00"


def _line(number: str, body: bytes, *, contact: str = "") -> bytes:
    """A line as the carrier's MESSAGE context writes it (ari_app/asterisk/render.py)."""
    fields = [f"<sip:{number}@10.0.0.9:5060>", "<sip:112@127.0.0.1>", contact, "call-1@x", "", ""]
    encoded = [base64.b64encode(b"." + f.encode()).decode() for f in fields] + [base64.b64encode(b"." + body).decode()]
    return f"v1 {AT} carrier-lokal {' '.join(encoded)}\n".encode()


class Desk:
    """What the SIP door does with a line, reduced to the store's write (the real store)."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.kept: list[str] = []

    async def take(self, entry: JournalEntry, key: str) -> None:
        got = await self.store.run(lambda s: s.receive_text(door="sip", number=entry.from_uri, address="", body=entry.body.decode(),
                                                            notes="", join_since=AT, at=entry.at, source_key=key))
        if got is not None:
            self.kept.append(entry.body.decode())


async def _texts(store: AsyncStore) -> list[str]:
    rows = await store.run(lambda s: [t.body for i in s.conversations() for t in s.texts(i.id)])
    return sorted(rows)


async def test_journal_lines_are_kept_in_order_and_once_even_read_again_after_a_restart(
        store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    journal_file = folder / "20261201.journal"
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        desk = Desk(store)
        journal = Journal(folder, store, desk.take)
        journal_file.write_bytes(_line("0811", b"satu") + b"v1 cut by a crash\n" + _line("0812", b"dua")
                                 + _line("0813", b"tiga")[:30])  # the last one still being written
        assert await journal.catch_up() == 2
        assert desk.kept == ["satu", "dua"]
        assert "line skipped" in caplog.text
        with journal_file.open("ab") as f:
            f.write(_line("0813", b"tiga")[30:])
        assert await journal.catch_up() == 1
        assert desk.kept == ["satu", "dua", "tiga"]
        assert await journal.catch_up() == 0

        again = Desk(store)  # the app restarted: the same lines read from the start
        assert await Journal(folder, store, again.take).catch_up() == 0
        assert again.kept == [] and await _texts(store) == ["dua", "satu", "tiga"]
    finally:
        await store.close()


async def test_a_journal_line_waits_while_the_store_is_down_and_is_kept_when_it_is_back(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "20261201.journal").write_bytes(_line("0811", b"tolong") + b"not a journal line\n")
    down = True
    real = TextTables.receive_text

    def receive_text(self: Any, **kwargs: Any) -> Any:
        if down:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, **kwargs)

    monkeypatch.setattr(TextTables, "receive_text", receive_text)
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        desk = Desk(store)
        journal = Journal(folder, store, desk.take)
        assert await journal.catch_up() == 0
        assert await journal.catch_up() == 0  # tried again each round, said once
        assert desk.kept == [] and caplog.text.count("SIP texts wait in") == 1
        down = False
        assert await journal.catch_up() == 1
        assert desk.kept == ["tolong"] and await _texts(store) == ["tolong"]
        assert caplog.text.count("line skipped") == 1
    finally:
        await store.close()


async def test_a_line_that_fails_for_a_bug_is_logged_and_does_not_hold_back_the_next_texts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "20261201.journal").write_bytes(_line("0811", b"satu") + _line("0812", b"dua"))
    store = AsyncStore(tmp_path)
    await store.open()
    try:
        desk = Desk(store)

        async def take(entry: JournalEntry, key: str) -> None:
            if entry.body == b"satu":
                raise ValueError("a bug")
            await desk.take(entry, key)

        assert await Journal(folder, store, take).catch_up() == 2
        assert desk.kept == ["dua"]
        assert "line NOT TAKEN (a bug)" in caplog.text and "a bug" in caplog.text
    finally:
        await store.close()


async def test_two_nodes_journals_with_the_same_file_and_offsets_both_keep_their_texts(tmp_path: Path) -> None:
    store = AsyncStore(tmp_path)
    await store.open()
    try:
        desk = Desk(store)
        for node, body in (("node1", b"dari node1"), ("node2", b"dari node2")):  # one shared store, a journal each
            folder = tmp_path / node
            folder.mkdir()
            (folder / "20261201.journal").write_bytes(_line("0811", body))
            assert await Journal(folder, store, desk.take, node=node).catch_up() == 1
        assert desk.kept == ["dari node1", "dari node2"]
    finally:
        await store.close()


async def test_an_old_file_is_removed_once_all_its_texts_are_kept_and_not_before(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    old, waiting, recent = folder / "20200101.journal", folder / "20200102.journal", folder / "29991231.journal"
    old.write_bytes(_line("0811", b"lama"))
    waiting.write_bytes(_line("0812", b"menunggu") + _line("0813", b"belum selesai")[:20])  # its last line still being written
    recent.write_bytes(_line("0814", b"baru"))
    store = AsyncStore(tmp_path)
    await store.open()
    try:
        desk = Desk(store)
        assert await Journal(folder, store, desk.take, keep_days=30).catch_up() == 3
        assert sorted(desk.kept) == ["baru", "lama", "menunggu"]
        assert not old.exists() and waiting.exists() and recent.exists()
    finally:
        await store.close()
