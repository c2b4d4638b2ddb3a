"""Where one Asterisk instance keeps its files, seen from the host and from inside the root.

Several instances (the `make run` stack and each test session) share one Debian root file
system; each has its own folder `/srv/ivr112/<instance>` for config, run files, logs and sounds.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import ConfigError

INSTANCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")
INSTANCES_DIR = "srv/ivr112"


@dataclass(frozen=True)
class Layout:
    root: Path
    instance: str

    def __post_init__(self) -> None:
        if not INSTANCE_RE.match(self.instance):
            raise ConfigError(f"instance name {self.instance!r} must be letters, digits, '-' or '_' (at most 41)")

    @property
    def inner(self) -> str:
        """The instance folder as Asterisk sees it inside the root."""
        return f"/{INSTANCES_DIR}/{self.instance}"

    def host(self, inner_path: str) -> Path:
        """The host path of a path inside the root."""
        return self.root / inner_path.lstrip("/")

    @property
    def etc(self) -> str:
        return f"{self.inner}/etc"

    @property
    def run(self) -> str:
        return f"{self.inner}/run"

    @property
    def log(self) -> str:
        return f"{self.inner}/log"

    @property
    def lib(self) -> str:
        return f"{self.inner}/lib"

    @property
    def spool(self) -> str:
        return f"{self.inner}/spool"

    @property
    def sounds(self) -> str:
        return f"{self.inner}/sounds"

    @property
    def recordings(self) -> str:
        return f"{self.spool}/recording"

    @property
    def texts_journal(self) -> str:
        """Where the dialplan writes each SIP MESSAGE to 112, one line per text, a file per day (ari_app/texts/journal.py)."""
        return f"{self.spool}/texts"

    @property
    def config_file(self) -> str:
        return f"{self.etc}/asterisk.conf"

    @property
    def beep(self) -> str:
        """The "speak now" tone (Asterisk's own beep is in a sound pack Debian does not install)."""
        return f"{self.sounds}/beep"

    def sound(self, plan_id: str, language: str, name: str) -> str:
        """Media path (no extension) of a prompt, as `sound:` and Playback() take it."""
        return f"{self.sounds}/{plan_id}/{language}/{name}"

    @property
    def pidfile(self) -> Path:
        return self.host(f"{self.run}/ivr112-asterisk.pid")

    @property
    def console_log(self) -> Path:
        return self.host(f"{self.log}/console.log")

    @property
    def messages_log(self) -> Path:
        return self.host(f"{self.log}/messages.log")

    def module_dir(self) -> str:
        """Asterisk's module folder inside the root (Debian puts it under the multiarch lib)."""
        found = sorted(self.root.glob("usr/lib/*/asterisk/modules"))
        if not found:
            # No Asterisk in this root (a container beside Asterisk's own): Debian's path.
            return f"/usr/lib/{platform.machine()}-linux-gnu/asterisk/modules"
        return "/" + str(found[0].relative_to(self.root))
