"""Console passwords: scrypt with a salt per password, constant-time checks."""

from __future__ import annotations

from ivr.passwords import hash_password, new_password, verify_password


def test_a_password_verifies_and_a_wrong_one_or_a_broken_hash_does_not() -> None:
    stored = hash_password("kotim-112-sampit")
    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("kotim-112-sampit", stored)
    assert not verify_password("kotim-112-sampiT", stored)
    assert not verify_password("kotim-112-sampit", "scrypt$1$2")
    assert not verify_password("x", "md5$abc")


def test_the_same_password_hashes_differently_each_time_and_new_passwords_are_long() -> None:
    assert hash_password("same") != hash_password("same")
    words = {new_password() for _ in range(20)}
    assert len(words) == 20 and all(len(w) == 12 for w in words)
