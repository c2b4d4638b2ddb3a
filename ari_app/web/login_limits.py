"""Console login attempts, counted per account and per address before any password is
hashed, so that a guesser's flood is refused at the cost of a dictionary look-up.

Theory of operation. Each account name and each client address keeps the times of its
recent failed logins (those within the lock-out period). When an account reaches
`account_failures` or an address `address_failures`, it is locked for the lock-out period;
while locked every attempt is refused at once, right or wrong, without looking at the
password. A success clears the account's failures (not the address's: one good password
must not launder a flood from the same machine). A supervisor lifts a lock (`lift`), which
also forgets its failures. Pure: the clock is given, nothing here touches a socket.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT, ADDRESS = "account", "address"
# Names and addresses tracked at most; the oldest is forgotten first, so a flood of made-up
# names cannot grow the app's memory.
MAX_TRACKED = 10_000
NAME_CHARS = 64


@dataclass(frozen=True)
class Limits:
    account_failures: int  # failed logins in a row that lock an account
    address_failures: int  # failed logins from one address that lock it
    lockout_s: float  # how long a lock lasts unless a supervisor lifts it


@dataclass(frozen=True)
class Lock:
    kind: str  # account or address
    key: str  # the account's name or the address
    until: float  # clock time the lock ends
    failures: int


@dataclass(frozen=True)
class Refusal:
    lock: Lock
    retry_after_s: float

    @property
    def message(self) -> str:
        what = f"the account {self.lock.key!r}" if self.lock.kind == ACCOUNT else f"logins from {self.lock.key}"
        return (f"{what} locked after {self.lock.failures} wrong passwords; try again in "
                f"{self.retry_after_s / 60:.0f} min or ask a supervisor to lift it")


@dataclass
class _Record:
    failures: deque[float]
    locked_until: float = 0.0


class LoginLimits:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._records: dict[str, OrderedDict[str, _Record]] = {ACCOUNT: OrderedDict(), ADDRESS: OrderedDict()}

    def check(self, name: str, address: str) -> Refusal | None:
        """Whether an attempt by `name` from `address` may go on to the password check."""
        now = self.clock()
        for kind, key in ((ADDRESS, address), (ACCOUNT, _name(name))):
            record = self._records[kind].get(key)
            if record is not None and record.locked_until > now:
                lock = Lock(kind, key, record.locked_until, len(record.failures))
                return Refusal(lock, record.locked_until - now)
        return None

    def failed(self, name: str, address: str) -> list[Lock]:
        """Count a wrong password; returns the locks this failure started (to log and audit)."""
        now = self.clock()
        started = []
        for kind, key, most in ((ACCOUNT, _name(name), self.limits.account_failures),
                                (ADDRESS, address, self.limits.address_failures)):
            record = self._record(kind, key, now)
            record.failures.append(now)
            if len(record.failures) >= most and record.locked_until <= now:
                record.locked_until = now + self.limits.lockout_s
                started.append(Lock(kind, key, record.locked_until, len(record.failures)))
        return started

    def succeeded(self, name: str) -> None:
        """A right password: the account's count starts again."""
        self._records[ACCOUNT].pop(_name(name), None)

    def lift(self, kind: str, key: str) -> bool:
        """A supervisor ends a lock (and forgets its failures); False if there was none."""
        record = self._records[kind].pop(_name(key) if kind == ACCOUNT else key, None)
        return record is not None and record.locked_until > self.clock()

    def locks(self) -> list[Lock]:
        """The locks in force now, accounts first."""
        now = self.clock()
        return [Lock(kind, key, r.locked_until, len(r.failures))
                for kind, records in self._records.items() for key, r in records.items() if r.locked_until > now]

    def _record(self, kind: str, key: str, now: float) -> _Record:
        records = self._records[kind]
        record = records.get(key)
        if record is None:
            record = records[key] = _Record(deque())
            while len(records) > MAX_TRACKED:
                records.popitem(last=False)
        records.move_to_end(key)
        while record.failures and record.failures[0] <= now - self.limits.lockout_s:
            record.failures.popleft()
        return record


def _name(name: str) -> str:
    return name[:NAME_CHARS]
