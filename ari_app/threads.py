"""Names of the app's own threads as Linux shows them (`top -H`, `ps -L`,
/proc/<pid>/task/<tid>/comm), so a thread's CPU time can be read from outside the app:
the benchmark reads the store thread's (bench/procstat.py)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

STORE_THREAD = "ivr112-store"
COMM_MAX = 15  # Linux keeps 15 bytes of a thread's name


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` (cut to 15 bytes) in the kernel; a thread initializer."""
    try:
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(name[:COMM_MAX])
    except OSError as exc:  # not Linux, or /proc read-only: the name only helps measuring
        log.debug("cannot name thread %s in the OS: %s", name, exc)
