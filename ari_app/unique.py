"""Ids unique across processes and restarts, made cheaply on the event loop.

This process's random prefix (80 bits, drawn once) and a count: unique like a uuid4 each,
for a tenth of its cost (no os.urandom per id). Used for the store's write keys and the
playbacks' ids, several per call. next() on a count is atomic, so any thread may call it."""

from __future__ import annotations

import itertools
import uuid

_PREFIX = uuid.uuid4().hex[:20]
_COUNT = itertools.count()


def new_id() -> str:
    """A new id: 20 hex digits of this process, then the count in hex."""
    return f"{_PREFIX}{next(_COUNT):x}"
