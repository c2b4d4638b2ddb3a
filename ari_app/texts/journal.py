"""The texts' journal, read. Asterisk answers a SIP MESSAGE (202) before anyone kept it; so
its dialplan writes each MESSAGE a carrier sends to 112 as a line of a daily file in the
instance's spool (`<spool>/texts/YYYYMMDD.journal`, rendered in ari_app/asterisk/render.py)
before it tells the app. This reader takes every complete line it has not taken yet, in
order, and hands it to the SIP door; a text is kept under its line's key (file and byte
offset), so a line read again (after a restart, or a crash between the store's commit and
the next line) is kept once.

It reads when woken (the ARI event of a new MESSAGE, an ARI reconnect), every POLL_S
seconds besides, and at start: a text that came while the app was down is taken then. A
line the store cannot take now (StoreUnavailable) stops the round; it is taken in a later
one, so the journal is also what keeps SIP texts while the store is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ari_app.storage import AsyncStore, StoreUnavailable
from ari_app.texts.rounds import Rounds
from ivr.texts import JOURNAL_SUFFIX, JournalEntry, TextRefused, journal_key, journal_prefix, parse_journal_line

log = logging.getLogger(__name__)

POLL_S = 1.0
SEEN_MAX = 512  # (From, body) of the lines read lately, for the ARI event's check

Take = Callable[[JournalEntry, str], Awaitable[None]]


class Journal(Rounds):
    task_name = "ivr112-texts-journal"

    def __init__(self, directory: Path, store: AsyncStore, take: Take, *, node: str = "", poll_s: float = POLL_S,
                 keep_days: int = 0) -> None:
        super().__init__(poll_s)
        self.directory = directory
        self.keep_days = keep_days  # a file all taken is removed this many days after its day (0: never)
        self.node = node  # the cluster node's name: its lines' keys differ from another node's
        self.store = store
        self.take = take
        self._offsets: dict[str, int] = {}  # file name -> bytes read and handled
        self._seen: deque[tuple[str, bytes]] = deque(maxlen=SEEN_MAX)
        self._lock = asyncio.Lock()
        self._store_down = False
        self.taken = 0

    async def round(self) -> object:
        return await self.catch_up()

    def failed(self, exc: Exception) -> None:
        # A bug here must not end the reading for good.
        log.error("texts' journal %s: reading failed; tried again in %g s", self.directory, self.every_s, exc_info=exc)

    def saw(self, from_uri: str, body: str) -> bool:
        """True when a line with this From and body was read (the ARI event's MESSAGE is in the journal)."""
        wanted = (from_uri, body.encode("utf-8", "surrogateescape"))
        if wanted in self._seen:
            self._seen.remove(wanted)
            return True
        return False

    async def catch_up(self) -> int:
        """Take every complete line not taken yet, file by file in date order; returns how many
        lines were handled. Stops at the first one the store cannot take."""
        async with self._lock:
            handled = 0
            for path in await asyncio.to_thread(self._files):
                try:
                    handled += await self._file(path)
                except StoreUnavailable as exc:
                    if not self._store_down:
                        log.error("texts' journal: SIP texts wait in %s until the store takes them (%s)", path, exc)
                    self._store_down = True
                    return handled
            if self._store_down and handled:
                log.warning("texts' journal: the store takes texts again; the waiting ones are kept")
            self._store_down = False
            await asyncio.to_thread(self._prune)
            return handled

    def _prune(self) -> None:
        """Remove the files older than keep_days whose every line was taken (read to their end)."""
        if self.keep_days <= 0:
            return
        oldest = (datetime.now(UTC).date() - timedelta(days=self.keep_days)).strftime("%Y%m%d")
        for path in self._files():
            day = path.name.removesuffix(JOURNAL_SUFFIX)
            if day.isdigit() and day < oldest and self._offsets.get(path.name, -1) == path.stat().st_size:
                path.unlink()
                del self._offsets[path.name]
                log.info("texts' journal %s removed: all its texts are in the store and it is over %d days old",
                         path, self.keep_days)

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(JOURNAL_SUFFIX))
        except FileNotFoundError:
            return []

    async def _file(self, path: Path) -> int:
        name = path.name
        kept: set[str] = set()
        if name not in self._offsets:
            # First look at this file since the start: which of its lines were kept before.
            kept = await self.store.run(lambda s: s.source_keys(journal_prefix(self.node, name)))
            self._offsets[name] = 0
        lines = await asyncio.to_thread(_complete_lines, path, self._offsets[name])
        # All read first, so that the ARI events of lines still waiting (store down) find them.
        entries: list[tuple[int, bytes, JournalEntry | TextRefused | None]] = []
        for offset, line in lines:
            entry: JournalEntry | TextRefused | None = None
            if journal_key(self.node, name, offset) not in kept:
                try:
                    entry = parse_journal_line(line)
                    self._seen.append((entry.from_uri, entry.body))
                except TextRefused as exc:
                    entry = exc
            entries.append((offset, line, entry))
        handled = 0
        for offset, line, entry in entries:
            if isinstance(entry, TextRefused):
                log.warning("texts' journal %s at byte %d: line skipped, %s", name, offset, entry)
            elif entry is not None:
                try:
                    await self.take(entry, journal_key(self.node, name, offset))
                except StoreUnavailable:
                    raise  # stop here: this line again in a later round
                except Exception:
                    # A bug on one line must not hold back every text after it; the line stays in the file.
                    log.exception("texts' journal %s at byte %d: line NOT TAKEN (a bug), skipped: %r", name, offset, line)
                handled += 1
            self._offsets[name] = offset + len(line) + 1
        self.taken += handled
        return handled


def _complete_lines(path: Path, start: int) -> list[tuple[int, bytes]]:
    """The complete lines (ended by a newline) from byte `start`, each with its offset; a line
    Asterisk is still writing is left for the next read."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return []
    out: list[tuple[int, bytes]] = []
    at = 0
    while (end := data.find(b"\n", at)) >= 0:
        out.append((start + at, data[at:end]))
        at = end + 1
    return out
