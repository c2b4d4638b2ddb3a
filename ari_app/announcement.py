"""The major-incident message: a short announcement a supervisor types (a flood, a big
fire) that every caller hears right after the greeting; any key skips it. On and off
without a reload; it survives an app restart (kept in `<data_dir>/announcement.json`).

The text is spoken by espeak-ng into the instance's sounds (`_announcement/<lang>/`), under
a new name each time, so a caller already hearing the old one is not cut off.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app.asterisk.layout import Layout
from ivr.prompts import speak_to_wav
from ivr.store import now

log = logging.getLogger(__name__)
FOLDER = "_announcement"
MAX_CHARS = 500


@dataclass(frozen=True)
class Announcement:
    texts: dict[str, str]  # language -> text
    stem: str  # file name, new for each announcement
    set_by: str
    since: str


class Announcements:
    def __init__(self, data_dir: Path, layout: Layout) -> None:
        self.file = data_dir / "announcement.json"
        self.layout = layout
        self.current: Announcement | None = None
        if self.file.exists():
            try:
                self.current = Announcement(**json.loads(self.file.read_text()))
            except (ValueError, TypeError) as exc:
                log.error("announcement file %s unreadable, no announcement is played: %s", self.file, exc)

    def set(self, texts: dict[str, str], *, by: str) -> Announcement:
        """Speak the texts into sound files (blocking: call it in a thread), then switch to them."""
        texts = {lang: " ".join(t.split())[:MAX_CHARS] for lang, t in texts.items() if t and t.strip()}
        if "id" not in texts:
            raise ValueError("the announcement needs its Indonesian text (text_id)")
        stem = f"announcement-{secrets.token_hex(4)}"
        for lang, text in texts.items():
            speak_to_wav(text, lang, self.layout.host(f"{self.layout.sounds}/{FOLDER}/{lang}/{stem}.wav"), what="the announcement")
        self.current = Announcement(texts, stem, by, now())
        self.file.write_text(json.dumps(asdict(self.current), ensure_ascii=False))
        log.warning("major-incident announcement ON (by %s): %s", by, texts["id"])
        return self.current

    def clear(self, *, by: str) -> None:
        if self.current is not None:
            log.warning("major-incident announcement OFF (by %s)", by)
        self.current = None
        self.file.unlink(missing_ok=True)

    def sound(self, language: str) -> str | None:
        """What Asterisk plays for a caller in `language` (the Indonesian one if there is no other)."""
        a = self.current
        if a is None:
            return None
        lang = language if language in a.texts else "id"
        return f"{self.layout.sounds}/{FOLDER}/{lang}/{a.stem}"
