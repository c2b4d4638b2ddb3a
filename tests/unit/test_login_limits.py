"""Console login limits, on a clock the test turns: a guesser is locked out per account
and per address, a supervisor lifts it, and the count forgets in time."""

from __future__ import annotations

from ari_app.web.login_limits import ACCOUNT, ADDRESS, MAX_TRACKED, Limits, LoginLimits

LIMITS = Limits(account_failures=5, address_failures=20, lockout_s=900)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one() -> None:
    limits = LoginLimits(LIMITS, Clock())
    for i in range(4):
        assert limits.check("operator1", f"10.0.0.{i}") is None
        assert limits.failed("operator1", f"10.0.0.{i}") == []
    started = limits.failed("operator1", "10.0.0.9")
    assert [(lk.kind, lk.key, lk.failures) for lk in started] == [(ACCOUNT, "operator1", 5)]
    refusal = limits.check("operator1", "10.0.0.50")  # from anywhere, whatever the password
    assert refusal is not None and refusal.retry_after_s == 900
    assert "operator1" in refusal.message and "supervisor" in refusal.message
    assert limits.check("operator2", "10.0.0.50") is None  # other accounts go on


def test_an_address_spraying_names_is_locked_for_every_name() -> None:
    limits = LoginLimits(LIMITS, Clock())
    for i in range(19):
        limits.failed(f"guess{i}", "203.0.113.9")
    assert limits.check("operator1", "203.0.113.9") is None
    assert [lk.kind for lk in limits.failed("guess19", "203.0.113.9")] == [ADDRESS]
    refusal = limits.check("operator1", "203.0.113.9")
    assert refusal is not None and refusal.lock.kind == ADDRESS
    assert limits.check("operator1", "203.0.113.10") is None


def test_a_right_password_clears_the_accounts_count_not_the_addresses() -> None:
    limits = LoginLimits(LIMITS, Clock())
    for _ in range(4):
        limits.failed("operator1", "10.0.0.1")
    limits.succeeded("operator1")
    for _ in range(4):
        assert limits.failed("operator1", "10.0.0.1") == []
    assert limits.check("operator1", "10.0.0.1") is None


def test_the_lock_ends_by_itself_and_old_failures_are_forgotten() -> None:
    clock = Clock()
    limits = LoginLimits(LIMITS, clock)
    for _ in range(5):
        limits.failed("operator1", "10.0.0.1")
    clock.now += 899
    assert limits.check("operator1", "10.0.0.1") is not None
    clock.now += 1
    assert limits.check("operator1", "10.0.0.1") is None
    assert limits.failed("operator1", "10.0.0.1") == []  # the five are older than the lock-out period


def test_a_supervisor_lifts_a_lock_and_sees_the_ones_in_force() -> None:
    limits = LoginLimits(LIMITS, Clock())
    for i in range(20):
        limits.failed("operator1" if i < 5 else f"x{i}", "10.0.0.1")
    assert {(lk.kind, lk.key) for lk in limits.locks()} == {(ACCOUNT, "operator1"), (ADDRESS, "10.0.0.1")}
    assert limits.lift(ACCOUNT, "operator1") is True
    assert limits.lift(ACCOUNT, "operator1") is False
    assert limits.lift(ADDRESS, "10.0.0.1") is True
    assert limits.check("operator1", "10.0.0.1") is None and limits.locks() == []


def test_a_flood_of_made_up_names_does_not_grow_memory_without_end() -> None:
    limits = LoginLimits(Limits(5, 10**9, 900), Clock())
    for i in range(MAX_TRACKED + 500):
        limits.failed(f"name{i}", "10.0.0.1")
    assert len(limits._records[ACCOUNT]) == MAX_TRACKED
