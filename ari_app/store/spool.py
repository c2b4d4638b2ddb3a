"""The local spool: writes the store could not take yet, one JSON line each, fsynced, so
that an app restarted while the store is down loses none of them. Replaying a line twice
is harmless (opens are keyed by channel, events by write key, updates set the same fields),
so the file is rewritten only when a drain stops half-way or ends."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPOOL_FILE = "store-spool.jsonl"


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.broken = ""  # why the file cannot be written (writes are then kept in memory only)

    def load(self) -> list[dict[str, Any]]:
        """The writes left by an earlier run, in order; a torn last line (a crash mid-write) is skipped."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("store spool %s cannot be read (%s): its writes wait until it can", self.path, exc)
            return []
        out = []
        for number, line in enumerate(lines, 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.error("store spool %s:%d is torn (a crash while writing it) and skipped: %.200s", self.path, number, line)
        return out

    def append(self, item: dict[str, Any]) -> None:
        """Add one write at the end, on disk before this returns."""
        self._write([item], "a")

    def rewrite(self, items: list[dict[str, Any]]) -> None:
        """Replace the file with `items` (what is still waiting); removes it when nothing is."""
        if not items:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                self._broke(exc)
            return
        temporary = self.path.with_suffix(".tmp")
        self._write(items, "w", temporary)
        if not self.broken:
            os.replace(temporary, self.path)

    def _write(self, items: list[dict[str, Any]], mode: str, path: Path | None = None) -> None:
        try:
            # With a PostgreSQL store nothing else may have made the data folder yet.
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(path or self.path, mode, encoding="utf-8") as f:
                for item in items:
                    f.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.broken = ""
        except OSError as exc:
            self._broke(exc)

    def _broke(self, exc: OSError) -> None:
        if not self.broken:
            log.error("store spool %s cannot be written (%s): waiting writes are kept in memory only", self.path, exc)
        self.broken = str(exc)
